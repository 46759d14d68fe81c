import Foundation
import Yams

/// Turns the text of one input into its documents, as ``Value``s.
///
/// JSON (first non-blank character `{` or `[`) goes through `JSONSerialization`; anything else
/// is a YAML stream of one or more `---` separated documents. Empty documents are dropped.
enum DocumentParser {
    static func parse(_ contents: String, source: String) throws(InputError) -> [Value] {
        var text = contents
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        let first = text.unicodeScalars.first { !CharacterSet.whitespacesAndNewlines.contains($0) }
        if first == nil { return [] }
        if first == "{" || first == "[" {
            switch try parseJSON(text, source: source) {
            case .null:
                return []
            case .list(let items):
                // A bare JSON array of objects reads like a `v1 List`.
                return [.map(["apiVersion": .string("v1"), "kind": .string("List"), "items": .list(items)])]
            case let value:
                return [value]
            }
        }
        return try parseYAML(text, source: source).filter { $0 != .null }
    }

    // MARK: JSON

    private static func parseJSON(_ text: String, source: String) throws(InputError) -> Value {
        let data = Data(text.utf8)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw InputError(source: source, problem: "invalid JSON: " + jsonErrorText(error, data: data))
        }
        return convertJSON(object)
    }

    /// Foundation reports a byte offset ("around character 117"); add the line and column.
    private static func jsonErrorText(_ error: Error, data: Data) -> String {
        let detail = ((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String)
            ?? error.localizedDescription
        guard let range = detail.range(of: "character ") else { return detail }
        let digits = detail[range.upperBound...].prefix { $0.isASCII && $0.isNumber }
        guard let offset = Int(digits), offset >= 0, offset <= data.count else { return detail }
        var line = 1, column = 1
        for byte in data.prefix(offset) {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {  // count characters, not UTF-8 continuation bytes
                column += 1
            }
        }
        return "line \(line), column \(column): \(detail)"
    }

    private static func convertJSON(_ object: Any) -> Value {
        switch object {
        case is NSNull:
            return .null
        case let text as String:
            return .string(text)
        case let number as NSNumber:
            // JSONSerialization marks booleans with the ObjC type "c"; integers with i/l/q;
            // fractions and out-of-range numbers with d.
            let type = String(cString: number.objCType)
            if type == "c" || type == "B" { return .bool(number.boolValue) }
            if type == "d" || type == "f" {
                let double = number.doubleValue
                return .float(double)
            }
            return .int(number.intValue)
        case let array as [Any]:
            return .list(array.map(convertJSON))
        case let dictionary as [String: Any]:
            return .map(dictionary.mapValues(convertJSON))
        default:
            return .string(String(describing: object))
        }
    }

    // MARK: YAML

    private static func parseYAML(_ text: String, source: String) throws(InputError) -> [Value] {
        var documents: [Value] = []
        do {
            let parser = try Parser(yaml: text, resolver: .default, constructor: .default, encoding: .utf8)
            while let node = try parser.nextRoot() {
                documents.append(convertYAML(node))
            }
        } catch let error as YamlError {
            throw InputError(source: source, problem: "invalid YAML: " + yamlErrorText(error))
        } catch {
            throw InputError(source: source, problem: "invalid YAML: \(error)")
        }
        return documents
    }

    /// Yams' own description ends with a snippet of the input; keep the first line only.
    private static func yamlErrorText(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            var text = "line \(mark.line), column \(mark.column): \(problem)"
            if let context {
                text += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            return text
        default:
            return String(describing: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
        }
    }

    private static func convertYAML(_ node: Node) -> Value {
        switch node {
        case .scalar(let scalar):
            return convertScalar(scalar, tag: Resolver.default.resolveTag(of: node))
        case .sequence(let sequence):
            return .list(sequence.map(convertYAML))
        case .mapping(let mapping):
            var members: [String: Value] = [:]
            var merged: [[String: Value]] = []
            for (key, value) in mapping {
                let keyText = key.scalar?.string ?? "\(key)"
                if case .scalar = key, Resolver.default.resolveTag(of: key) == .merge {
                    // `<<: *anchor` or `<<: [*a, *b]`: explicit keys win over merged ones.
                    switch convertYAML(value) {
                    case .map(let m): merged.append(m)
                    case .list(let items):
                        for case .map(let m) in items { merged.append(m) }
                    default: members[keyText] = convertYAML(value)
                    }
                    continue
                }
                members[keyText] = convertYAML(value)
            }
            for m in merged {
                members.merge(m) { explicit, _ in explicit }
            }
            return .map(members)
        }
    }

    private static func convertScalar(_ scalar: Node.Scalar, tag: Tag.Name) -> Value {
        let text = scalar.string
        switch tag {
        case .null:
            return .null
        case .bool:
            return .bool(["true", "yes", "on"].contains(text.lowercased()))
        case .int:
            if let value = parseYAMLInt(text) { return .int(value) }
            if let value = Double(text) { return .float(value) }
            return .string(text)
        case .float:
            if let value = Double(text.replacingOccurrences(of: "_", with: "")) { return .float(value) }
            switch text.lowercased() {
            case ".inf", "+.inf": return .float(.infinity)
            case "-.inf": return .float(-.infinity)
            case ".nan": return .float(.nan)
            default: return .string(text)
            }
        default:
            return .string(text)
        }
    }

    /// YAML 1.1 integers: decimal, 0x hex, 0o / leading-zero octal, 0b binary, `_` separators.
    private static func parseYAMLInt(_ text: String) -> Int? {
        var digits = text.replacingOccurrences(of: "_", with: "")
        var negative = false
        if digits.hasPrefix("-") || digits.hasPrefix("+") {
            negative = digits.hasPrefix("-")
            digits.removeFirst()
        }
        var radix = 10
        if digits.hasPrefix("0x") { radix = 16; digits.removeFirst(2) }
        else if digits.hasPrefix("0o") { radix = 8; digits.removeFirst(2) }
        else if digits.hasPrefix("0b") { radix = 2; digits.removeFirst(2) }
        else if digits.count > 1 && digits.hasPrefix("0") { radix = 8; digits.removeFirst() }
        guard !digits.isEmpty, let magnitude = Int(digits, radix: radix) else { return nil }
        return negative ? -magnitude : magnitude
    }
}
