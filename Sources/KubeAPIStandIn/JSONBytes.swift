// The stand-in keeps every object as the JSON bytes it serves. This reader finds the byte
// ranges of an object's members, decodes the few strings the store needs (name, namespace,
// labels, uid ...) and copies values compactly (without whitespace), so that storing an
// object costs one pass over its bytes instead of a parse into Foundation objects and two
// serialisations.

/// Why bytes are not the JSON the stand-in expects, with the byte offset.
struct JSONBytesError: Error, Sendable, CustomStringConvertible {
    var offset: Int
    var problem: String
    var description: String { "at byte \(offset): \(problem)" }
}

/// One member of a JSON object: its decoded key and the byte range of its value.
struct JSONMember {
    var key: String
    var value: Range<Int>
}

/// Reads JSON text held in a byte array.
struct JSONBytes {
    let bytes: [UInt8]
    /// Deepest nesting of arrays and objects accepted (bad input must not exhaust the stack).
    static let maximumDepth = 256

    /// The members of the object that fills `bytes` (whitespace around it allowed).
    func rootMembers() throws(JSONBytesError) -> [JSONMember] {
        var position = skipWhitespace(from: 0)
        let members = try self.members(at: &position)
        position = skipWhitespace(from: position)
        guard position == bytes.count else { throw JSONBytesError(offset: position, problem: "text after the object") }
        return members
    }

    /// The members of the object whose value range is `range`; nil when the value is not an object.
    func members(of range: Range<Int>) throws(JSONBytesError) -> [JSONMember]? {
        guard bytes[range.lowerBound] == UInt8(ascii: "{") else { return nil }
        var position = range.lowerBound
        return try members(at: &position)
    }

    /// The value ranges of the elements of the array whose value range is `range`; nil when
    /// the value is not an array.
    func elements(of range: Range<Int>) throws(JSONBytesError) -> [Range<Int>]? {
        guard bytes[range.lowerBound] == UInt8(ascii: "[") else { return nil }
        var elements: [Range<Int>] = []
        var position = skipWhitespace(from: range.lowerBound + 1)
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") { return elements }
        while true {
            position = skipWhitespace(from: position)
            let start = position
            try skipValue(at: &position, depth: 1)
            elements.append(start..<position)
            position = skipWhitespace(from: position)
            guard position < bytes.count else { throw JSONBytesError(offset: position, problem: "unterminated array") }
            if bytes[position] == UInt8(ascii: "]") { return elements }
            try expect(UInt8(ascii: ","), at: &position)
        }
    }

    /// The string whose value range is `range`; nil when the value is not a string.
    func string(at range: Range<Int>) throws(JSONBytesError) -> String? {
        guard bytes[range.lowerBound] == UInt8(ascii: "\"") else { return nil }
        var position = range.lowerBound
        return try readString(at: &position)
    }

    /// Appends the value at `range` to `out` without the whitespace between its tokens.
    func appendCompact(_ range: Range<Int>, to out: inout [UInt8]) {
        var inString = false
        var escaped = false
        var runStart = range.lowerBound
        var index = range.lowerBound
        while index < range.upperBound {
            let byte = bytes[index]
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
            } else if Self.isWhitespace(byte) {
                out.append(contentsOf: bytes[runStart..<index])
                runStart = index + 1
            }
            index += 1
        }
        out.append(contentsOf: bytes[runStart..<range.upperBound])
    }

    /// Appends `text` as a JSON string.
    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                        hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: Scanning

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    private func skipWhitespace(from start: Int) -> Int {
        var position = start
        while position < bytes.count, Self.isWhitespace(bytes[position]) { position += 1 }
        return position
    }

    private func expect(_ byte: UInt8, at position: inout Int) throws(JSONBytesError) {
        position = skipWhitespace(from: position)
        guard position < bytes.count, bytes[position] == byte else {
            throw JSONBytesError(offset: position, problem: "expected \"\(Character(Unicode.Scalar(byte)))\"")
        }
        position += 1
    }

    private func members(at position: inout Int) throws(JSONBytesError) -> [JSONMember] {
        try expect(UInt8(ascii: "{"), at: &position)
        var members: [JSONMember] = []
        position = skipWhitespace(from: position)
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return members
        }
        while true {
            position = skipWhitespace(from: position)
            let key = try readString(at: &position)
            try expect(UInt8(ascii: ":"), at: &position)
            position = skipWhitespace(from: position)
            let start = position
            try skipValue(at: &position, depth: 1)
            members.append(JSONMember(key: key, value: start..<position))
            position = skipWhitespace(from: position)
            guard position < bytes.count else { throw JSONBytesError(offset: position, problem: "unterminated object") }
            if bytes[position] == UInt8(ascii: "}") {
                position += 1
                return members
            }
            try expect(UInt8(ascii: ","), at: &position)
        }
    }

    /// Moves `position` past one value (which starts at `position`), checking its syntax.
    private func skipValue(at position: inout Int, depth: Int) throws(JSONBytesError) {
        guard depth <= Self.maximumDepth else { throw JSONBytesError(offset: position, problem: "nested too deeply") }
        guard position < bytes.count else { throw JSONBytesError(offset: position, problem: "value expected") }
        switch bytes[position] {
        case UInt8(ascii: "\""):
            try skipString(at: &position)
        case UInt8(ascii: "{"):
            position += 1
            position = skipWhitespace(from: position)
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return }
            while true {
                position = skipWhitespace(from: position)
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                    throw JSONBytesError(offset: position, problem: "member name expected")
                }
                try skipString(at: &position)
                try expect(UInt8(ascii: ":"), at: &position)
                position = skipWhitespace(from: position)
                try skipValue(at: &position, depth: depth + 1)
                position = skipWhitespace(from: position)
                guard position < bytes.count else { throw JSONBytesError(offset: position, problem: "unterminated object") }
                if bytes[position] == UInt8(ascii: "}") { position += 1; return }
                try expect(UInt8(ascii: ","), at: &position)
            }
        case UInt8(ascii: "["):
            position += 1
            position = skipWhitespace(from: position)
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return }
            while true {
                position = skipWhitespace(from: position)
                try skipValue(at: &position, depth: depth + 1)
                position = skipWhitespace(from: position)
                guard position < bytes.count else { throw JSONBytesError(offset: position, problem: "unterminated array") }
                if bytes[position] == UInt8(ascii: "]") { position += 1; return }
                try expect(UInt8(ascii: ","), at: &position)
            }
        case UInt8(ascii: "t"): try skipLiteral("true", at: &position)
        case UInt8(ascii: "f"): try skipLiteral("false", at: &position)
        case UInt8(ascii: "n"): try skipLiteral("null", at: &position)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try skipNumber(at: &position)
        default:
            throw JSONBytesError(offset: position, problem: "value expected")
        }
    }

    private func skipLiteral(_ literal: StaticString, at position: inout Int) throws(JSONBytesError) {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count,
              bytes[position..<position + count].elementsEqual(UnsafeBufferPointer(start: literal.utf8Start, count: count)) else {
            throw JSONBytesError(offset: position, problem: "value expected")
        }
        position += count
    }

    private func skipNumber(at position: inout Int) throws(JSONBytesError) {
        let start = position
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        let digitsStart = position
        while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
        guard position > digitsStart else { throw JSONBytesError(offset: start, problem: "bad number") }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            let fraction = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
            guard position > fraction else { throw JSONBytesError(offset: start, problem: "bad number") }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            let exponent = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
            guard position > exponent else { throw JSONBytesError(offset: start, problem: "bad number") }
        }
    }

    private func skipString(at position: inout Int) throws(JSONBytesError) {
        let start = position
        position += 1
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: "\""):
                position += 1
                return
            case UInt8(ascii: "\\"): position += 2
            case 0..<0x20: throw JSONBytesError(offset: position, problem: "control character in a string")
            default: position += 1
            }
        }
        throw JSONBytesError(offset: start, problem: "unterminated string")
    }

    /// Reads the string at `position` (which must start it), decoding escapes.
    private func readString(at position: inout Int) throws(JSONBytesError) -> String {
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
            throw JSONBytesError(offset: position, problem: "string expected")
        }
        let start = position + 1
        try skipString(at: &position)
        let body = bytes[start..<position - 1]
        guard body.contains(UInt8(ascii: "\\")) else {
            return String(decoding: body, as: UTF8.self)
        }
        return try unescape(body)
    }

    private func unescape(_ body: ArraySlice<UInt8>) throws(JSONBytesError) -> String {
        var scalars = String.UnicodeScalarView()
        var utf8: [UInt8] = []
        var index = body.startIndex
        func flush() {
            scalars.append(contentsOf: String(decoding: utf8, as: UTF8.self).unicodeScalars)
            utf8.removeAll(keepingCapacity: true)
        }
        func hex(at index: Int) throws(JSONBytesError) -> UInt32 {
            guard index + 4 <= body.endIndex, let value = UInt32(String(decoding: body[index..<index + 4], as: UTF8.self), radix: 16) else {
                throw JSONBytesError(offset: index, problem: "bad \\u escape")
            }
            return value
        }
        while index < body.endIndex {
            let byte = body[index]
            guard byte == UInt8(ascii: "\\"), index + 1 < body.endIndex else {
                utf8.append(byte)
                index += 1
                continue
            }
            let escape = body[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                var value = try hex(at: index)
                index += 4
                if (0xD800..<0xDC00).contains(value), index + 6 <= body.endIndex,
                   body[index] == UInt8(ascii: "\\"), body[index + 1] == UInt8(ascii: "u") {
                    let low = try hex(at: index + 2)
                    if (0xDC00..<0xE000).contains(low) {
                        value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                        index += 6
                    }
                }
                flush()
                scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            default:
                throw JSONBytesError(offset: index - 1, problem: "bad escape")
            }
        }
        flush()
        return String(scalars)
    }
}
