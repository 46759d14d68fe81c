/// A JSON parser over the raw bytes of an input that builds ``Value``s only for the parts a
/// ``Keep`` schema names and skips the rest, checking its syntax (and UTF-8) without building
/// anything.
///
/// Refuses duplicate keys in every object it builds, integers beyond 64 bits, numbers beyond
/// `Double`, and nesting deeper than ``InputLimits/maxDepth``.
struct JSONReader {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0
    /// Receives the elements of the top-level object's `items` list one by one (with their
    /// index), which then are not kept in the returned value; see ``DocumentParser``.
    private var itemSink: ((Value, Int) -> Void)?

    private init(_ bytes: UnsafeBufferPointer<UInt8>, start: Int) {
        self.bytes = bytes
        self.index = start
    }

    /// Parses the one JSON value in `bytes` from `start` (after any byte order mark) to the end.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, keep: Keep,
                      itemSink: ((Value, Int) -> Void)? = nil) throws(ParseFailure) -> Value {
        var reader = JSONReader(bytes, start: start)
        reader.itemSink = itemSink
        reader.skipWhitespace()
        let value = try reader.value(keep)
        reader.skipWhitespace()
        guard reader.index == bytes.count else {
            throw .syntax("unexpected \(reader.describeCurrent()) after the end of the document", at: reader.index)
        }
        return value
    }

    // MARK: Bytes

    /// The current byte, or 0 (never valid JSON outside strings) at the end.
    @inline(__always) private var current: UInt8 {
        index < bytes.count ? bytes[index] : 0
    }

    @inline(__always) private mutating func skipWhitespace() {
        // Indentation (kubectl indents by four spaces per level) eight spaces at a time.
        while index + 8 <= bytes.count, word(at: index) == Self.spaces { index += 8 }
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    /// The eight bytes at `offset` (which must be at most `bytes.count - 8`) as one word.
    @inline(__always) private func word(at offset: Int) -> UInt64 {
        UnsafeRawPointer(bytes.baseAddress.unsafelyUnwrapped + offset).loadUnaligned(as: UInt64.self)
    }

    private static let spaces: UInt64 = 0x2020_2020_2020_2020
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// Whether the eight bytes of `word` are all plain string content: printable ASCII other
    /// than `"` and `\`. (Bit tricks: a byte below 0x20 makes `word - 0x20…` borrow into its
    /// high bit; a byte equal to `c` is a zero byte of `word ^ c…`.)
    @inline(__always) private static func isPlainText(_ word: UInt64) -> Bool {
        func hasZeroByte(_ value: UInt64) -> UInt64 { (value &- ones) & ~value & highBits }
        let below0x20 = (word &- ones &* 0x20) & ~word & highBits
        let quote = hasZeroByte(word ^ (ones &* 0x22))
        let backslash = hasZeroByte(word ^ (ones &* 0x5C))
        return (below0x20 | quote | backslash | (word & highBits)) == 0
    }

    private func describeCurrent() -> String {
        guard index < bytes.count else { return "end of input" }
        let byte = bytes[index]
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16, uppercase: true))"
    }

    private func unexpected(_ expected: String) -> ParseFailure {
        .syntax("expected \(expected), found \(describeCurrent())", at: index)
    }

    private mutating func enter() throws(ParseFailure) {
        depth += 1
        if depth > InputLimits.maxDepth { throw .content(ParseProblem.tooDeep(), at: index) }
    }

    // MARK: Values

    private mutating func value(_ keep: Keep) throws(ParseFailure) -> Value {
        switch current {
        case UInt8(ascii: "{"):
            if case .everything = keep { return try object(nil) }
            if let members = keep.members { return try object(members) }
            try skipValue()
            return .map([:])
        case UInt8(ascii: "["):
            switch keep {
            case .everything: return try list(.everything)
            case .list(let element): return try list(element)
            default:
                try skipValue()
                return .list([])
            }
        case UInt8(ascii: "\""):
            return .string(try string(build: true) ?? "")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try number(build: true)
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        default:
            throw unexpected("a value")
        }
    }

    /// An object; `schema` nil keeps every member.
    private mutating func object(_ schema: [String: Keep]?) throws(ParseFailure) -> Value {
        try enter()
        index += 1
        var members: [String: Value] = [:]
        var skipped = SeenKeys()
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return .map(members)
        }
        // Room for the few members of most objects at once, instead of growing the table
        // (and hashing every key again) at the 2nd, 4th and 7th member.
        members.reserveCapacity(6)
        while true {
            guard current == UInt8(ascii: "\"") else { throw unexpected("a string key") }
            let keyOffset = index
            let key = try string(build: true) ?? ""
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw unexpected("':' after an object key") }
            index += 1
            skipWhitespace()
            if let keep = schema == nil ? .everything : schema?[key] {
                let member: Value
                if depth == 1, key == "items", current == UInt8(ascii: "["), let itemSink {
                    try streamItems(to: itemSink)
                    member = .list([])
                } else {
                    member = try value(keep)
                }
                if members.updateValue(member, forKey: key) != nil {
                    throw .content(ParseProblem.duplicateKey(key), at: keyOffset)
                }
            } else {
                if !skipped.insert(key) { throw .content(ParseProblem.duplicateKey(key), at: keyOffset) }
                try skipValue()
            }
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
            case UInt8(ascii: "}"):
                index += 1
                depth -= 1
                return .map(members)
            default:
                throw unexpected("',' or '}' in an object")
            }
        }
    }

    private mutating func list(_ element: Keep) throws(ParseFailure) -> Value {
        try enter()
        index += 1
        var items: [Value] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return .list(items)
        }
        while true {
            items.append(try value(element))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
            case UInt8(ascii: "]"):
                index += 1
                depth -= 1
                return .list(items)
            default:
                throw unexpected("',' or ']' in a list")
            }
        }
    }

    /// The top-level `items` list, each element built and handed to `sink` in turn.
    private mutating func streamItems(to sink: (Value, Int) -> Void) throws(ParseFailure) {
        try enter()
        index += 1
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return
        }
        var count = 0
        while true {
            sink(try value(.kubernetesObject), count)
            count += 1
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
            case UInt8(ascii: "]"):
                index += 1
                depth -= 1
                return
            default:
                throw unexpected("',' or ']' in a list")
            }
        }
    }

    /// Checks one value and moves past it without building anything.
    private mutating func skipValue() throws(ParseFailure) {
        switch current {
        case UInt8(ascii: "{"):
            try enter()
            index += 1
            skipWhitespace()
            if current == UInt8(ascii: "}") {
                index += 1
                depth -= 1
                return
            }
            while true {
                guard current == UInt8(ascii: "\"") else { throw unexpected("a string key") }
                _ = try string(build: false)
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { throw unexpected("':' after an object key") }
                index += 1
                skipWhitespace()
                try skipValue()
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","):
                    index += 1
                    skipWhitespace()
                case UInt8(ascii: "}"):
                    index += 1
                    depth -= 1
                    return
                default:
                    throw unexpected("',' or '}' in an object")
                }
            }
        case UInt8(ascii: "["):
            try enter()
            index += 1
            skipWhitespace()
            if current == UInt8(ascii: "]") {
                index += 1
                depth -= 1
                return
            }
            while true {
                try skipValue()
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","):
                    index += 1
                    skipWhitespace()
                case UInt8(ascii: "]"):
                    index += 1
                    depth -= 1
                    return
                default:
                    throw unexpected("',' or ']' in a list")
                }
            }
        case UInt8(ascii: "\""):
            _ = try string(build: false)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            _ = try number(build: false)
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: throw unexpected("a value")
        }
    }

    private mutating func literal(_ word: StaticString) throws(ParseFailure) {
        let start = index
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count,
              UnsafeBufferPointer(start: word.utf8Start, count: count).elementsEqual(bytes[index..<index + count])
        else { throw .syntax("invalid literal (expected \(word))", at: start) }
        index += count
    }

    // MARK: Numbers

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// A number as RFC 8259 spells it; built as `.int` when it has no fraction or exponent.
    private mutating func number(build: Bool) throws(ParseFailure) -> Value {
        let start = index
        let negative = current == UInt8(ascii: "-")
        if negative { index += 1 }
        guard isDigit(current) else { throw unexpected("a digit") }
        if current == UInt8(ascii: "0") {
            index += 1
        } else {
            while isDigit(current) { index += 1 }
        }
        let integerEnd = index
        var isInteger = true
        if current == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard isDigit(current) else { throw unexpected("a digit after '.'") }
            while isDigit(current) { index += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard isDigit(current) else { throw unexpected("a digit in the exponent") }
            while isDigit(current) { index += 1 }
        }
        guard build else { return .null }
        let literal = bytes[start..<index]
        if isInteger {
            // Accumulate towards the sign so that Int.min is reachable.
            var value = 0
            for byte in bytes[(negative ? start + 1 : start)..<integerEnd] {
                let digit = Int(byte - UInt8(ascii: "0"))
                let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
                let (next, overflowB) = negative ? shifted.subtractingReportingOverflow(digit)
                                                 : shifted.addingReportingOverflow(digit)
                if overflowA || overflowB { return .outOfRangeInteger(shortLiteral(literal)) }
                value = next
            }
            return .int(value)
        }
        guard let double = Double(String(decoding: literal, as: UTF8.self)), double.isFinite else {
            throw .content(ParseProblem.numberOutOfRange(literal), at: start)
        }
        return .float(double)
    }

    // MARK: Strings

    /// A string literal, decoded when `build` (nil otherwise). Checks escapes, control
    /// characters and UTF-8 either way.
    private mutating func string(build: Bool) throws(ParseFailure) -> String? {
        let open = index
        index += 1
        let start = index
        while index < bytes.count {
            // Plain text eight bytes at a time; the byte loop below checks everything else.
            while index + 8 <= bytes.count, Self.isPlainText(word(at: index)) { index += 8 }
            guard index < bytes.count else { break }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return build ? String(decoding: bytes[start..<index - 1], as: UTF8.self) : nil
            }
            if byte == UInt8(ascii: "\\") {
                return try escapedString(from: start, build: build)
            }
            if byte < 0x20 { throw controlCharacter(byte) }
            index += byte < 0x80 ? 1 : try utf8Length()
        }
        throw .syntax("unterminated string", at: open)
    }

    /// The rest of a string with escapes, from `start` (its first byte); `index` is at a `\`.
    private mutating func escapedString(from start: Int, build: Bool) throws(ParseFailure) -> String? {
        var decoded: [UInt8] = []
        if build { decoded.append(contentsOf: bytes[start..<index]) }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return build ? String(decoding: decoded, as: UTF8.self) : nil
            case UInt8(ascii: "\\"):
                let scalar = try escape()
                if build { decoded.append(contentsOf: Array(String(Character(scalar)).utf8)) }
            case 0..<0x20:
                throw controlCharacter(byte)
            case 0x20..<0x80:
                let runStart = index
                index += 1
                while index + 8 <= bytes.count, Self.isPlainText(word(at: index)) { index += 8 }
                if build { decoded.append(contentsOf: bytes[runStart..<index]) }
            default:
                let length = try utf8Length()
                if build { decoded.append(contentsOf: bytes[index..<index + length]) }
                index += length
            }
        }
        throw .syntax("unterminated string", at: start - 1)
    }

    /// One escape sequence at `index` (a `\`), with surrogate pairs joined.
    private mutating func escape() throws(ParseFailure) -> Unicode.Scalar {
        let start = index
        index += 1
        let letter = current
        index += 1
        switch letter {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let unit = try hex4(escapeStart: start)
            if (0xD800..<0xDC00).contains(unit) {
                guard current == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else {
                    throw .syntax("invalid \\u escape: a lone surrogate", at: start)
                }
                index += 2
                let low = try hex4(escapeStart: start)
                guard (0xDC00..<0xE000).contains(low),
                      let scalar = Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)) else {
                    throw .syntax("invalid \\u escape: a lone surrogate", at: start)
                }
                return scalar
            }
            guard let scalar = Unicode.Scalar(unit) else {
                throw .syntax("invalid \\u escape: a lone surrogate", at: start)
            }
            return scalar
        default:
            throw .syntax("invalid escape sequence in a string", at: start)
        }
    }

    private mutating func hex4(escapeStart: Int) throws(ParseFailure) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = current
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw .syntax("invalid \\u escape (expected 4 hexadecimal digits)", at: escapeStart)
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private func controlCharacter(_ byte: UInt8) -> ParseFailure {
        .syntax("control character U+\(String(byte, radix: 16, uppercase: true).leftPadded(4)) in a string (must be escaped)",
                at: index)
    }

    /// Length of the well-formed UTF-8 sequence of 2-4 bytes at `index`.
    @inline(__always) private func utf8Length() throws(ParseFailure) -> Int {
        let lead = bytes[index]
        func byte(_ offset: Int, in range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
            index + offset < bytes.count && range.contains(bytes[index + offset])
        }
        let valid: Int? = switch lead {
        case 0xC2...0xDF: byte(1) ? 2 : nil
        case 0xE0: byte(1, in: 0xA0...0xBF) && byte(2) ? 3 : nil
        case 0xE1...0xEC, 0xEE...0xEF: byte(1) && byte(2) ? 3 : nil
        case 0xED: byte(1, in: 0x80...0x9F) && byte(2) ? 3 : nil
        case 0xF0: byte(1, in: 0x90...0xBF) && byte(2) && byte(3) ? 4 : nil
        case 0xF1...0xF3: byte(1) && byte(2) && byte(3) ? 4 : nil
        case 0xF4: byte(1, in: 0x80...0x8F) && byte(2) && byte(3) ? 4 : nil
        default: nil
        }
        guard let valid else { throw .syntax("invalid UTF-8", at: index) }
        return valid
    }
}

extension String {
    /// The string with leading zeros up to `width` characters.
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
