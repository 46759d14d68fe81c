/// A JSON-like value as `kubectl get -o json|yaml` prints it: objects of string keys,
/// arrays, strings, integers and booleans. kubectl prints unstructured objects, so the
/// keys of every object come out sorted; the renderers sort them.
indirect enum KubectlValue {
    case string(String)
    case int(Int)
    case bool(Bool)
    case object([(String, KubectlValue)])
    case array([KubectlValue])

    static let emptyObject = KubectlValue.object([])

    /// Keys in byte order, as Go's encoding/json and go-yaml write map keys.
    fileprivate var sortedMembers: [(String, KubectlValue)] {
        guard case .object(let members) = self else { return [] }
        return members.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
    }

    /// Compact JSON with sorted keys, as `json.Marshal` writes it (the form of
    /// `kubectl.kubernetes.io/last-applied-configuration`).
    var compactJSON: String {
        var out = ""
        KubectlJSON.write(self, indent: nil, level: 0, into: &out)
        return out
    }
}

/// `kubectl get -o json`: `json.MarshalIndent` with four spaces, keys sorted, `<`, `>` and
/// `&` escaped as Go does.
enum KubectlJSON {
    /// `value` as an indented JSON document at nesting `level` (each level four spaces),
    /// without a trailing newline.
    static func render(_ value: KubectlValue, level: Int = 0) -> String {
        var out = ""
        write(value, indent: "    ", level: level, into: &out)
        return out
    }

    fileprivate static func write(_ value: KubectlValue, indent: String?, level: Int, into out: inout String) {
        func newline(_ level: Int) {
            guard let indent else { return }
            out += "\n"
            for _ in 0..<level { out += indent }
        }
        switch value {
        case .string(let text): writeString(text, into: &out)
        case .int(let number): out += String(number)
        case .bool(let flag): out += flag ? "true" : "false"
        case .array(let elements):
            guard !elements.isEmpty else { out += "[]"; return }
            out += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { out += "," }
                newline(level + 1)
                write(element, indent: indent, level: level + 1, into: &out)
            }
            newline(level)
            out += "]"
        case .object:
            let members = value.sortedMembers
            guard !members.isEmpty else { out += "{}"; return }
            out += "{"
            for (index, (key, member)) in members.enumerated() {
                if index > 0 { out += "," }
                newline(level + 1)
                writeString(key, into: &out)
                out += indent == nil ? ":" : ": "
                write(member, indent: indent, level: level + 1, into: &out)
            }
            newline(level)
            out += "}"
        }
    }

    static func writeString(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

/// `kubectl get -o yaml`: go-yaml's block style as kubectl prints it. Two spaces per
/// mapping level, sequences not indented under their key (`key:` then `- item` at the
/// key's column), `{}` and `[]` for empty collections, strings double-quoted where a plain
/// scalar would read as something else (numbers, booleans, timestamps, empty), and strings
/// with line breaks as literal blocks (`|`).
enum KubectlYAML {
    /// The members of a top-level object, each line indented by `indent` spaces; when
    /// `firstPrefix` is given (`"- "`), it replaces the indentation of the first line, for
    /// an object that is an item of a sequence.
    static func render(_ value: KubectlValue, indent: Int = 0, firstPrefix: String? = nil) -> String {
        var out = ""
        writeMembers(value, indent: indent, firstPrefix: firstPrefix, into: &out)
        return out
    }

    private static func spaces(_ count: Int) -> String { String(repeating: " ", count: count) }

    /// Members of an object; the caller has written nothing of the first line yet.
    private static func writeMembers(_ value: KubectlValue, indent: Int, firstPrefix: String?, into out: inout String) {
        for (index, (key, member)) in value.sortedMembers.enumerated() {
            if index == 0, let firstPrefix {
                out += spaces(indent - firstPrefix.count) + firstPrefix
            } else {
                out += spaces(indent)
            }
            out += scalar(key) + ":"
            writeValue(member, indent: indent, into: &out)
        }
    }

    /// The value of a mapping key at column `indent`, starting right after the colon.
    private static func writeValue(_ value: KubectlValue, indent: Int, into out: inout String) {
        switch value {
        case .object(let members) where members.isEmpty: out += " {}\n"
        case .array(let elements) where elements.isEmpty: out += " []\n"
        case .object:
            out += "\n"
            writeMembers(value, indent: indent + 2, firstPrefix: nil, into: &out)
        case .array(let elements):
            out += "\n"
            writeItems(elements, indent: indent, into: &out)
        case .string(let text) where text.contains("\n"):
            // A literal block; "|" keeps one final line break, "|-" none.
            out += text.hasSuffix("\n") ? " |\n" : " |-\n"
            let body = text.hasSuffix("\n") ? String(text.dropLast()) : text
            for line in body.split(separator: "\n", omittingEmptySubsequences: false) {
                out += line.isEmpty ? "\n" : spaces(indent + 2) + line + "\n"
            }
        default:
            out += " " + scalar(value) + "\n"
        }
    }

    /// Items of a sequence whose dashes sit at column `indent`.
    private static func writeItems(_ elements: [KubectlValue], indent: Int, into out: inout String) {
        for element in elements {
            switch element {
            case .object(let members) where !members.isEmpty:
                writeMembers(element, indent: indent + 2, firstPrefix: "- ", into: &out)
            case .array(let inner) where !inner.isEmpty:
                out += spaces(indent) + "-\n"
                writeItems(inner, indent: indent + 2, into: &out)
            case .object: out += spaces(indent) + "- {}\n"
            case .array: out += spaces(indent) + "- []\n"
            default: out += spaces(indent) + "- " + scalar(element) + "\n"
            }
        }
    }

    private static func scalar(_ value: KubectlValue) -> String {
        switch value {
        case .string(let text): return scalar(text)
        case .int(let number): return String(number)
        case .bool(let flag): return flag ? "true" : "false"
        case .object, .array: return ""
        }
    }

    /// A string as a plain scalar when it reads back as that string, else double-quoted.
    static func scalar(_ text: String) -> String {
        needsQuotes(text) ? quoted(text) : text
    }

    private static let reservedWords: Set<String> = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
        "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~", ".inf", ".Inf", ".INF", "-.inf", "+.inf",
        ".nan", ".NaN", ".NAN",
    ]

    static func needsQuotes(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, let last = text.unicodeScalars.last else { return true }
        if reservedWords.contains(text) { return true }
        if first == " " || last == " " || last == ":" { return true }
        if "-?:,[]{}#&*!|>'\"%@`".unicodeScalars.contains(first) {
            // "-x" is plain in block context, but a lone "-" or "- " is not; quote them all, as go-yaml does.
            return true
        }
        if text.contains(": ") || text.contains(" #") || text.contains("\t") { return true }
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) { return true }
        // Numbers (integers in any base, floats) and timestamps read as something else.
        if looksNumeric(text) { return true }
        return false
    }

    /// Reads as a number or a timestamp, as go-yaml resolves a plain scalar that starts
    /// with a digit, a sign or a dot: an integer (any base, `_` ignored), a float, or a date.
    private static func looksNumeric(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, "0123456789+-.".unicodeScalars.contains(first) else { return false }
        let plain = text.replacingOccurrences(of: "_", with: "")
        var unsigned = Substring(plain)
        if unsigned.hasPrefix("+") || unsigned.hasPrefix("-") { unsigned = unsigned.dropFirst() }
        if Int(unsigned) != nil || Double(plain) != nil { return true }
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where unsigned.hasPrefix(prefix) {
            if Int(unsigned.dropFirst(2), radix: radix) != nil { return true }
        }
        // A date, "2006-1-2" and all that starts with it (timestamps).
        let parts = plain.split(separator: "-", maxSplits: 2, omittingEmptySubsequences: false)
        if parts.count == 3, parts[0].count == 4, parts[0].allSatisfy(\.isASCII), Int(parts[0]) != nil,
           (1...2).contains(parts[1].count), Int(parts[1]) != nil,
           let day = parts[2].prefix(2).split(whereSeparator: { !$0.isNumber }).first, Int(day) != nil {
            return true
        }
        return false
    }

    private static func quoted(_ text: String) -> String {
        var out = ""
        KubectlJSON.writeString(text, into: &out)
        // JSON's escapes of <, > and & are not YAML's; those characters need none.
        return out.replacingOccurrences(of: "\\u003c", with: "<").replacingOccurrences(of: "\\u003e", with: ">")
            .replacingOccurrences(of: "\\u0026", with: "&")
    }
}
