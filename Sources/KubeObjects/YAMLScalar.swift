/// Resolution of YAML scalars to ``Value``s as YAML 1.1 does for untagged plain scalars (the
/// rules kubectl output and hand-written manifests rely on): `yes`/`on`/`true` booleans,
/// `~`/`null` nulls, decimal, `0x` hex, `0o`/leading-zero octal and `0b` binary integers with
/// `_` separators, and floats; quoted scalars are strings. Explicit `!!int`, `!!float`,
/// `!!bool`, `!!null` and `!!str` tags are honoured, and refused when the text does not fit.
enum YAMLScalar {
    private static let tagPrefix = "tag:yaml.org,2002:"

    /// The value of a scalar. `tag` is the resolved tag (nil for none), `plain` whether the
    /// scalar was written without quotes or block style.
    static func resolve(_ text: UnsafeBufferPointer<UInt8>, tag: String?, plain: Bool) throws(ScalarProblem) -> Value {
        guard let tag else {
            return plain ? try implicit(text) : .string(String(decoding: text, as: UTF8.self))
        }
        let string = String(decoding: text, as: UTF8.self)
        switch tag {
        case tagPrefix + "int":
            guard case .integer(let radix, let negative, let digits)? = integerForm(text) else {
                throw .notA("integer", string)
            }
            return try integer(text, radix: radix, negative: negative, digits: digits)
        case tagPrefix + "float":
            if integerForm(text) == nil && !isFloat(text) { throw .notA("number", string) }
            return try float(text, string)
        case tagPrefix + "bool":
            guard let value = boolean(string) else { throw .notA("boolean", string) }
            return .bool(value)
        case tagPrefix + "null":
            guard isNull(string) else { throw .notA("null", string) }
            return .null
        default:
            return .string(string)
        }
    }

    /// Why a scalar was refused.
    enum ScalarProblem: Error {
        case notA(String, String)
        case numberOutOfRange(String)

        var message: String {
            switch self {
            case .notA(let what, let text): return "\(quoted(shortText(text))) is not a valid \(what)"
            case .numberOutOfRange(let text): return ParseProblem.numberOutOfRange(Array(text.utf8))
            }
        }

        private func shortText(_ text: String) -> String {
            text.count <= InputLimits.maxQuotedLength ? text : String(text.prefix(InputLimits.maxQuotedLength)) + "…"
        }
    }

    private static func implicit(_ text: UnsafeBufferPointer<UInt8>) throws(ScalarProblem) -> Value {
        let string = String(decoding: text, as: UTF8.self)
        if let value = boolean(string), isImplicitBoolean(string) { return .bool(value) }
        if let form = integerForm(text) {
            switch form {
            case .integer(let radix, let negative, let digits):
                // "0x_": no digits, a string (as before); "0_" is octal 0.
                if !text[digits].contains(where: { $0 != UInt8(ascii: "_") }) { return .string(string) }
                return try integer(text, radix: radix, negative: negative, digits: digits)
            case .sexagesimal:
                return .string(string)  // base 60 is YAML 1.1 only; Kubernetes reads it as a string
            }
        }
        if isFloat(text) { return try float(text, string) }
        if isNull(string) { return .null }
        return .string(string)
    }

    // MARK: Booleans and nulls

    private static func isImplicitBoolean(_ text: String) -> Bool {
        ["yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
         "on", "On", "ON", "off", "Off", "OFF"].contains(text)
    }

    private static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: return nil
        }
    }

    private static func isNull(_ text: String) -> Bool {
        ["", "~", "null", "Null", "NULL"].contains(text)
    }

    // MARK: Integers

    enum IntegerForm: Equatable {
        /// Digits (with `_`) in `radix`, after sign and prefix.
        case integer(radix: Int, negative: Bool, digits: Range<Int>)
        /// `1:30`: YAML 1.1 base 60.
        case sexagesimal
    }

    private static func isDigit(_ byte: UInt8, radix: Int) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0")) < radix
        case UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"): return radix == 16
        default: return false
        }
    }

    /// The form of a YAML 1.1 integer, or nil if `text` is not one.
    static func integerForm(_ text: UnsafeBufferPointer<UInt8>) -> IntegerForm? {
        var start = 0
        var negative = false
        if let first = text.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            start = 1
        }
        let rest = text[start...]
        func all(from index: Int, radix: Int) -> Bool {
            index < text.count && text[index...].allSatisfy { $0 == UInt8(ascii: "_") || isDigit($0, radix: radix) }
        }
        guard let lead = rest.first else { return nil }
        if lead == UInt8(ascii: "0") && rest.count > 1 {
            let second = text[start + 1]
            if second == UInt8(ascii: "b") {
                return all(from: start + 2, radix: 2) ? .integer(radix: 2, negative: negative, digits: start + 2..<text.count) : nil
            }
            if second == UInt8(ascii: "x") {
                return all(from: start + 2, radix: 16) ? .integer(radix: 16, negative: negative, digits: start + 2..<text.count) : nil
            }
            if second == UInt8(ascii: "o") {
                return all(from: start + 2, radix: 8) ? .integer(radix: 8, negative: negative, digits: start + 2..<text.count) : nil
            }
            return all(from: start + 1, radix: 8) ? .integer(radix: 8, negative: negative, digits: start..<text.count) : nil
        }
        if lead == UInt8(ascii: "0") { return .integer(radix: 10, negative: negative, digits: start..<text.count) }
        guard isDigit(lead, radix: 10) else { return nil }
        if all(from: start, radix: 10) { return .integer(radix: 10, negative: negative, digits: start..<text.count) }
        return isSexagesimal(text[start...]) ? .sexagesimal : nil
    }

    /// `[1-9][0-9_]*(:[0-5]?[0-9])+`
    private static func isSexagesimal(_ text: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        let groups = text.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        guard groups.count > 1, let head = groups.first,
              head.allSatisfy({ $0 == UInt8(ascii: "_") || isDigit($0, radix: 10) }) else { return false }
        return groups.dropFirst().allSatisfy { group in
            guard let last = group.last, isDigit(last, radix: 10), group.count <= 2 else { return false }
            return group.count == 1 || (UInt8(ascii: "0")...UInt8(ascii: "5")).contains(group[group.startIndex])
        }
    }

    private static func integer(_ text: UnsafeBufferPointer<UInt8>, radix: Int, negative: Bool,
                                digits: Range<Int>) throws(ScalarProblem) -> Value {
        var value = 0
        var any = false
        for byte in text[digits] where byte != UInt8(ascii: "_") {
            any = true
            let digit = switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a")) + 10
            default: Int(byte - UInt8(ascii: "A")) + 10
            }
            let (shifted, overflowA) = value.multipliedReportingOverflow(by: radix)
            let (next, overflowB) = negative ? shifted.subtractingReportingOverflow(digit)
                                             : shifted.addingReportingOverflow(digit)
            if overflowA || overflowB { return .outOfRangeInteger(shortLiteral(text)) }
            value = next
        }
        if !any { throw .notA("integer", String(decoding: text, as: UTF8.self)) }
        return .int(value)
    }

    // MARK: Floats

    /// `[-+]?[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?`, `\.[0-9_]+([eE][-+][0-9]+)?`,
    /// `[-+]?\.(inf|Inf|INF)` or `\.(nan|NaN|NAN)`.
    private static func isFloat(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        let string = String(decoding: text, as: UTF8.self)
        if [".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
            ".nan", ".NaN", ".NAN"].contains(string) { return true }
        var index = 0
        func at(_ i: Int) -> UInt8 { i < text.count ? text[i] : 0 }
        func isDecimal(_ byte: UInt8) -> Bool { isDigit(byte, radix: 10) }
        func digitsAndUnderscores() { while isDecimal(at(index)) || at(index) == UInt8(ascii: "_") { index += 1 } }
        if at(0) == UInt8(ascii: ".") {
            index = 1
            let before = index
            digitsAndUnderscores()
            guard index > before else { return false }
            if at(index) == UInt8(ascii: "e") || at(index) == UInt8(ascii: "E") {
                index += 1
                guard at(index) == UInt8(ascii: "+") || at(index) == UInt8(ascii: "-") else { return false }
                index += 1
                guard isDecimal(at(index)) else { return false }
                while isDecimal(at(index)) { index += 1 }
            }
            return index == text.count
        }
        if at(0) == UInt8(ascii: "+") || at(0) == UInt8(ascii: "-") { index = 1 }
        guard isDecimal(at(index)) else { return false }
        digitsAndUnderscores()
        if at(index) == UInt8(ascii: ".") {
            index += 1
            digitsAndUnderscores()
        }
        if at(index) == UInt8(ascii: "e") || at(index) == UInt8(ascii: "E") {
            index += 1
            if at(index) == UInt8(ascii: "+") || at(index) == UInt8(ascii: "-") { index += 1 }
            guard isDecimal(at(index)) else { return false }
            while isDecimal(at(index)) { index += 1 }
        }
        return index == text.count
    }

    private static func float(_ text: UnsafeBufferPointer<UInt8>, _ string: String) throws(ScalarProblem) -> Value {
        switch string.lowercased() {
        case ".inf", "+.inf": return .float(.infinity)
        case "-.inf": return .float(-.infinity)
        case ".nan": return .float(.nan)
        default: break
        }
        let digits = String(string.filter { $0 != "_" })
        guard let value = Double(digits) else { throw .notA("number", string) }
        guard value.isFinite else { throw .numberOutOfRange(string) }
        return .float(value)
    }
}
