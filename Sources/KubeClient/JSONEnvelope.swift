// The envelope of API responses (list metadata and item ranges, watch event type and object,
// Status) read by a byte-range scanner: values that are not needed are skipped without being
// built, and every object is handed on as a slice of the received bytes. Everything that
// knows JSON syntax is in this file, so it can be replaced by a shared parser as a whole.

/// A syntax error at a byte offset, or an envelope field that is missing or of the wrong type.
public struct JSONEnvelopeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Offset in the scanned bytes.
    public var offset: Int
    /// What is wrong, naming the field when there is one.
    public var problem: String
    public var description: String { "at byte \(offset): \(problem)" }
}

/// Reads the envelope of API responses.
public enum JSONEnvelope {
    /// A list response (`{"kind":"ServiceList","metadata":{...},"items":[...]}`).
    public static func listPage(_ bytes: [UInt8]) throws(JSONEnvelopeError) -> ListPage {
        var scanner = ByteScanner(bytes: bytes, range: bytes.indices)
        var kind = ""
        var resourceVersion: String?
        var continueToken: String?
        var remaining: Int?
        var items: [RawObject] = []
        try scanner.members { key, scanner throws(JSONEnvelopeError) in
            switch key {
            case "kind": kind = try scanner.string(field: "kind")
            case "metadata":
                try scanner.members { key, scanner throws(JSONEnvelopeError) in
                    switch key {
                    case "resourceVersion": resourceVersion = try scanner.string(field: "metadata.resourceVersion")
                    case "continue":
                        let token = try scanner.string(field: "metadata.continue")
                        continueToken = token.isEmpty ? nil : token
                    case "remainingItemCount": remaining = try scanner.integer(field: "metadata.remainingItemCount")
                    default: try scanner.skipValue()
                    }
                }
            case "items":
                if try scanner.null() { return }
                try scanner.elements { index, scanner throws(JSONEnvelopeError) in
                    items.append(try scanner.objectEnvelope(field: "items[\(index)]"))
                }
            default: try scanner.skipValue()
            }
        }
        try scanner.finish()
        guard let resourceVersion else {
            throw JSONEnvelopeError(offset: 0, problem: "metadata.resourceVersion missing in \(kind.isEmpty ? "list" : kind)")
        }
        let itemKind = kind.hasSuffix("List") ? String(kind.dropLast(4)) : kind
        for index in items.indices where items[index].kind.isEmpty { items[index].kind = itemKind }
        return ListPage(kind: kind, items: items, resourceVersion: resourceVersion,
                        continueToken: continueToken, remainingItemCount: remaining)
    }

    /// One watch event (`{"type":"ADDED","object":{...}}`), a complete JSON value.
    public static func watchEvent(_ bytes: [UInt8]) throws(JSONEnvelopeError) -> WatchEvent {
        var scanner = ByteScanner(bytes: bytes, range: bytes.indices)
        var type: String?
        var objectRange: Range<Int>?
        try scanner.members { key, scanner throws(JSONEnvelopeError) in
            switch key {
            case "type": type = try scanner.string(field: "type")
            case "object": objectRange = try scanner.skipValue()
            default: try scanner.skipValue()
            }
        }
        try scanner.finish()
        guard let type else { throw JSONEnvelopeError(offset: 0, problem: "watch event without \"type\"") }
        guard let objectRange else { throw JSONEnvelopeError(offset: 0, problem: "\(type) event without \"object\"") }
        var objectScanner = ByteScanner(bytes: bytes, range: objectRange)
        switch type {
        case "ADDED": return .added(try objectScanner.objectEnvelope(field: "object"))
        case "MODIFIED": return .modified(try objectScanner.objectEnvelope(field: "object"))
        case "DELETED": return .deleted(try objectScanner.objectEnvelope(field: "object"))
        case "BOOKMARK": return .bookmark(resourceVersion: try objectScanner.objectEnvelope(field: "object").resourceVersion)
        case "ERROR": return .error(try status(bytes, range: objectRange))
        default: throw JSONEnvelopeError(offset: 0, problem: "unknown watch event type \"\(type)\"")
        }
    }

    /// A `Status` object, e.g. the body of an error response.
    public static func status(_ bytes: [UInt8]) throws(JSONEnvelopeError) -> APIStatus {
        try status(bytes, range: bytes.indices)
    }

    static func status(_ bytes: [UInt8], range: Range<Int>) throws(JSONEnvelopeError) -> APIStatus {
        var scanner = ByteScanner(bytes: bytes, range: range)
        var code: Int?
        var reason = ""
        var message = ""
        try scanner.members { key, scanner throws(JSONEnvelopeError) in
            switch key {
            case "code": code = try scanner.integer(field: "code")
            case "reason": reason = try scanner.string(field: "reason")
            case "message": message = try scanner.string(field: "message")
            default: try scanner.skipValue()
            }
        }
        guard let code else { throw JSONEnvelopeError(offset: range.lowerBound, problem: "Status without \"code\"") }
        return APIStatus(code: code, reason: reason, message: message)
    }
}

/// Splits a watch stream into its events: complete top-level JSON values, however the bytes
/// were cut into chunks (one event per line is how the API server writes them, but the
/// splitter follows JSON nesting and strings, not newlines).
public struct WatchEventSplitter: Sendable {
    private var pending: [UInt8] = []
    private var scanned = 0
    private var depth = 0
    private var inString = false
    private var escaped = false
    private var valueStart: Int?
    /// The largest event accepted, in bytes.
    public let maximumEventSize: Int

    /// Creates a splitter that rejects events larger than `maximumEventSize` bytes.
    public init(maximumEventSize: Int = 64 << 20) {
        self.maximumEventSize = maximumEventSize
    }

    /// Bytes received and not yet part of a complete event.
    public var bufferedByteCount: Int { pending.count }

    /// Adds received bytes and returns the events they complete, each a whole JSON value.
    public mutating func append<Bytes: Sequence>(_ bytes: Bytes) throws(JSONEnvelopeError) -> [[UInt8]]
    where Bytes.Element == UInt8 {
        pending.append(contentsOf: bytes)
        var events: [[UInt8]] = []
        var consumed = 0
        var index = scanned
        while index < pending.count {
            let byte = pending[index]
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            } else {
                switch byte {
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    if depth == 0 { valueStart = index }
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth < 0 { throw JSONEnvelopeError(offset: index, problem: "unbalanced \"\(Character(UnicodeScalar(byte)))\" in watch stream") }
                    if depth == 0, let start = valueStart {
                        events.append(Array(pending[start...index]))
                        valueStart = nil
                        consumed = index + 1
                    }
                case UInt8(ascii: "\""):
                    guard depth > 0 else { throw JSONEnvelopeError(offset: index, problem: "watch event is not a JSON object") }
                    inString = true
                case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                    if depth == 0 { consumed = index + 1 }
                default:
                    guard depth > 0 else { throw JSONEnvelopeError(offset: index, problem: "watch event is not a JSON object") }
                }
            }
            index += 1
        }
        if consumed > 0 {
            pending.removeFirst(consumed)
            if let start = valueStart { valueStart = start - consumed }
        }
        scanned = pending.count
        if pending.count > maximumEventSize {
            throw JSONEnvelopeError(offset: 0, problem: "watch event larger than \(maximumEventSize) bytes")
        }
        return events
    }
}

/// A cursor over JSON bytes that reads only what the envelope needs and skips the rest.
struct ByteScanner {
    let bytes: [UInt8]
    var index: Int
    let end: Int

    init(bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        self.index = range.lowerBound
        self.end = range.upperBound
    }

    /// The envelope of the object at the cursor: its range, kind and metadata.
    mutating func objectEnvelope(field: @autoclosure () -> String) throws(JSONEnvelopeError) -> RawObject {
        skipWhitespace()
        let start = index
        var kind = ""
        var namespace = ""
        var name = ""
        var resourceVersion = ""
        try members { key, scanner throws(JSONEnvelopeError) in
            switch key {
            case "kind": kind = try scanner.string(field: "\(field()).kind")
            case "metadata":
                try scanner.members { key, scanner throws(JSONEnvelopeError) in
                    switch key {
                    case "name": name = try scanner.string(field: "\(field()).metadata.name")
                    case "namespace": namespace = try scanner.string(field: "\(field()).metadata.namespace")
                    case "resourceVersion": resourceVersion = try scanner.string(field: "\(field()).metadata.resourceVersion")
                    default: try scanner.skipValue()
                    }
                }
            default: try scanner.skipValue()
            }
        }
        return RawObject(json: bytes[start..<index], kind: kind, namespace: namespace, name: name,
                         resourceVersion: resourceVersion)
    }

    /// Calls `body` with each key of the object at the cursor; `body` must read or skip the value.
    mutating func members(_ body: (String, inout ByteScanner) throws(JSONEnvelopeError) -> Void) throws(JSONEnvelopeError) {
        try expect(UInt8(ascii: "{"), what: "an object")
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { index += 1; return }
        while true {
            skipWhitespace()
            let key = try string(field: "object key")
            skipWhitespace()
            try expect(UInt8(ascii: ":"), what: "\":\" after \"\(key)\"")
            try body(key, &self)
            skipWhitespace()
            guard let next = peek() else { throw error("object not closed") }
            index += 1
            if next == UInt8(ascii: "}") { return }
            guard next == UInt8(ascii: ",") else { throw JSONEnvelopeError(offset: index - 1, problem: "expected \",\" or \"}\"") }
        }
    }

    /// Calls `body` with the index of each element of the array at the cursor.
    mutating func elements(_ body: (Int, inout ByteScanner) throws(JSONEnvelopeError) -> Void) throws(JSONEnvelopeError) {
        try expect(UInt8(ascii: "["), what: "an array")
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { index += 1; return }
        var count = 0
        while true {
            skipWhitespace()
            try body(count, &self)
            count += 1
            skipWhitespace()
            guard let next = peek() else { throw error("array not closed") }
            index += 1
            if next == UInt8(ascii: "]") { return }
            guard next == UInt8(ascii: ",") else { throw JSONEnvelopeError(offset: index - 1, problem: "expected \",\" or \"]\"") }
        }
    }

    /// Consumes `null` if it is at the cursor.
    mutating func null() throws(JSONEnvelopeError) -> Bool {
        skipWhitespace()
        guard peek() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    /// Reads a string value, decoding escapes. `field` (named in errors) is built only for an error.
    mutating func string(field: @autoclosure () -> String) throws(JSONEnvelopeError) -> String {
        skipWhitespace()
        guard peek() == UInt8(ascii: "\"") else { throw error("\(field()): expected a string") }
        index += 1
        let start = index
        var plain = true
        while index < end {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let range = start..<index
                index += 1
                return plain ? String(decoding: bytes[range], as: UTF8.self) : try unescape(range, field: field())
            }
            if byte == UInt8(ascii: "\\") { plain = false; index += 1 }
            index += 1
        }
        throw JSONEnvelopeError(offset: start, problem: "\(field()): string not closed")
    }

    /// Moves past the string at the cursor (which must start it) without building it: the
    /// strings inside skipped values are most of a realistic object's bytes.
    private mutating func skipString() throws(JSONEnvelopeError) {
        let start = index
        index += 1
        while index < end {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return
            }
            if byte == UInt8(ascii: "\\") { index += 1 }
            index += 1
        }
        throw JSONEnvelopeError(offset: start, problem: "string: string not closed")
    }

    /// Reads an integer value.
    mutating func integer(field: String) throws(JSONEnvelopeError) -> Int {
        skipWhitespace()
        let start = index
        try skipNumber()
        guard let value = Int(String(decoding: bytes[start..<index], as: UTF8.self)) else {
            throw JSONEnvelopeError(offset: start, problem: "\(field): not an integer")
        }
        return value
    }

    /// Skips the value at the cursor and returns its range.
    @discardableResult
    mutating func skipValue() throws(JSONEnvelopeError) -> Range<Int> {
        skipWhitespace()
        let start = index
        guard let first = peek() else { throw error("value expected") }
        switch first {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while index < end {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    try skipString()
                    continue
                }
                if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") { depth += 1 }
                if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                    depth -= 1
                    if depth == 0 { index += 1; return start..<index }
                }
                index += 1
            }
            throw JSONEnvelopeError(offset: start, problem: "value not closed")
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: try skipNumber()
        }
        return start..<index
    }

    /// Checks that only whitespace follows.
    mutating func finish() throws(JSONEnvelopeError) {
        skipWhitespace()
        guard index == end else { throw error("unexpected data after the JSON value") }
    }

    private mutating func skipNumber() throws(JSONEnvelopeError) {
        let start = index
        while index < end, let byte = peek(),
              (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            index += 1
        }
        guard index > start else { throw error("unexpected character") }
    }

    private mutating func literal(_ word: StaticString) throws(JSONEnvelopeError) {
        let text = Array(UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount))
        guard index + text.count <= end, Array(bytes[index..<index + text.count]) == text else {
            throw error("unexpected character")
        }
        index += text.count
    }

    private mutating func expect(_ byte: UInt8, what: String) throws(JSONEnvelopeError) {
        skipWhitespace()
        guard peek() == byte else { throw error("expected \(what)") }
        index += 1
    }

    private mutating func skipWhitespace() {
        while index < end {
            switch bytes[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): index += 1
            default: return
            }
        }
    }

    private func peek() -> UInt8? { index < end ? bytes[index] : nil }

    private func error(_ problem: String) -> JSONEnvelopeError {
        JSONEnvelopeError(offset: index, problem: problem)
    }

    /// Decodes the escapes of the string whose content is `range`.
    private func unescape(_ range: Range<Int>, field: String) throws(JSONEnvelopeError) -> String {
        var scalars = String.UnicodeScalarView()
        var utf8: [UInt8] = []
        var position = range.lowerBound
        func flush() {
            scalars.append(contentsOf: String(decoding: utf8, as: UTF8.self).unicodeScalars)
            utf8.removeAll()
        }
        while position < range.upperBound {
            let byte = bytes[position]
            guard byte == UInt8(ascii: "\\"), position + 1 < range.upperBound else {
                utf8.append(byte)
                position += 1
                continue
            }
            let escape = bytes[position + 1]
            position += 2
            switch escape {
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "u"):
                guard position + 4 <= range.upperBound,
                      var code = UInt32(String(decoding: bytes[position..<position + 4], as: UTF8.self), radix: 16) else {
                    throw JSONEnvelopeError(offset: position, problem: "\(field): bad \\u escape")
                }
                position += 4
                // A surrogate pair spells one scalar in two escapes.
                if (0xD800..<0xDC00).contains(code), position + 6 <= range.upperBound,
                   bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u"),
                   let low = UInt32(String(decoding: bytes[position + 2..<position + 6], as: UTF8.self), radix: 16),
                   (0xDC00..<0xE000).contains(low) {
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    position += 6
                }
                flush()
                scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default: utf8.append(escape)
            }
        }
        flush()
        return String(scalars)
    }
}
