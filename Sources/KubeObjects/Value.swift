/// A parsed JSON or YAML value: the one representation both parsers produce, decoded by hand
/// so that every error can name the exact field.
enum Value: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case float(Double)
    /// An integer literal beyond 64 bits, as written (cut for messages): an error where an
    /// integer is read, ignored elsewhere.
    case outOfRangeInteger(String)
    case string(String)
    case list([Value])
    case map([String: Value])

    /// "a string (\"80\")", "an object", ... for error messages.
    var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "a boolean (\(b))"
        case .int(let i): return "an integer (\(i))"
        case .float(let d): return "a number (\(d))"
        case .outOfRangeInteger(let text): return "an integer out of range (\(text))"
        case .string(let s): return "a string (\(quoted(s)))"
        case .list: return "a list"
        case .map: return "an object"
        }
    }
}

/// `"text"` with quotes and control characters escaped, for messages; text beyond
/// ``InputLimits/maxQuotedCharacters`` is cut and marked with `…`.
func quoted(_ text: String) -> String {
    var out = "\""
    var remaining = InputLimits.maxQuotedCharacters
    for scalar in text.unicodeScalars {
        remaining -= 1
        if remaining < 0 {
            out += "…"
            break
        }
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7f {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// The object a field belongs to, for error messages: source, position, kind and name as far
/// as known. A class: every ``Field`` of the object refers to it, and copying one reference is
/// cheaper than copying five strings.
final class ObjectRef: Sendable {
    let source: String
    let kind: String
    let namespace: String?
    let name: String?
    /// Position in the input: `document 2`, or `document 1, items[3]` in a List.
    let location: String

    init(source: String, kind: String, namespace: String? = nil, name: String? = nil, location: String) {
        self.source = source
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.location = location
    }

    /// `Service default/web`, `Service web` or `Service`.
    var description: String {
        if let name {
            if let namespace { return "\(kind) \(namespace)/\(name)" }
            return "\(kind) \(name)"
        }
        return kind
    }
}

/// A field of an object (present or absent) with its path, offering typed accessors whose
/// errors name the object and the field.
struct Field {
    /// nil when the field is absent.
    let value: Value?
    /// The path of the parent field, and the step from it to this field: the path is only
    /// spelled out when asked for (nearly always for an error message), not for every field read.
    private let parentPath: String
    private let step: PathStep
    let owner: ObjectRef

    /// How a field hangs off its parent.
    private enum PathStep {
        /// The parent path is the whole path.
        case none
        /// `parent.key` (`key` at the root).
        case key(String)
        /// `parent[3]`.
        case index(Int)
        /// `parent["key"]`, for keys that may contain dots (labels, annotations).
        case quotedKey(String)
    }

    /// Path from the object root, e.g. `spec.ports[1].port`; empty for the root.
    var path: String {
        switch step {
        case .none: return parentPath
        case .key(let key): return parentPath.isEmpty ? key : parentPath + "." + key
        case .index(let index): return parentPath + "[" + String(index) + "]"
        case .quotedKey(let key): return parentPath + "[" + quoted(key) + "]"
        }
    }

    init(value: Value?, path: String, owner: ObjectRef) {
        self.init(value: value, parentPath: path, step: .none, owner: owner)
    }

    private init(value: Value?, parentPath: String, step: PathStep, owner: ObjectRef) {
        self.value = value
        self.parentPath = parentPath
        self.step = step
        self.owner = owner
    }

    /// The field `parent["key"]`, with `value`.
    init(value: Value?, quotedKey key: String, in parent: Field) {
        self.init(value: value, parentPath: parent.path, step: .quotedKey(key), owner: parent.owner)
    }

    /// The object root.
    init(root: Value, owner: ObjectRef) {
        self.init(value: root, path: "", owner: owner)
    }

    /// An error about this field.
    func fail(_ problem: String) -> InputError {
        InputError(source: owner.source, document: owner.location, object: owner.description,
                   field: path.isEmpty ? nil : path, problem: problem)
    }

    /// Absent, or explicitly null (Kubernetes treats both the same).
    var isAbsent: Bool {
        switch value {
        case nil, .null?: return true
        default: return false
        }
    }

    private func typeError(expected: String) -> InputError {
        fail("expected \(expected), found \(value?.kindDescription ?? "nothing")")
    }

    /// The member `key` of this object; absent if this field is absent or null.
    func field(_ key: String) throws(InputError) -> Field {
        switch value {
        case nil, .null?:
            return Field(value: nil, parentPath: path, step: .key(key), owner: owner)
        case .map(let members)?:
            return Field(value: members[key], parentPath: path, step: .key(key), owner: owner)
        default:
            throw typeError(expected: "an object")
        }
    }

    /// The elements of this list; empty if the field is absent or null.
    func elements() throws(InputError) -> [Field] {
        switch value {
        case nil, .null?:
            return []
        case .list(let items)?:
            let path = path
            return items.enumerated().map { Field(value: $1, parentPath: path, step: .index($0), owner: owner) }
        default:
            throw typeError(expected: "a list")
        }
    }

    /// The members of this object sorted by key; empty if the field is absent or null.
    func members() throws(InputError) -> [(key: String, field: Field)] {
        switch value {
        case nil, .null?:
            return []
        case .map(let members)?:
            let path = path
            return members.keys.sorted().map { key in
                (key, Field(value: members[key], parentPath: path, step: .quotedKey(key), owner: owner))
            }
        default:
            throw typeError(expected: "an object")
        }
    }

    /// A string, or nil if absent or null.
    func optionalString() throws(InputError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let s)?: return s
        default: throw typeError(expected: "a string")
        }
    }

    /// A string that must be present and non-empty.
    func requiredString() throws(InputError) -> String {
        guard let text = try optionalString() else { throw fail("missing") }
        guard !text.isEmpty else { throw fail("must not be empty") }
        return text
    }

    /// An integer, or nil if absent or null. Strings (`"80"`) and fractions are rejected, as
    /// Kubernetes rejects them.
    func optionalInt() throws(InputError) -> Int? {
        switch value {
        case nil, .null?: return nil
        case .int(let i)?: return i
        case .outOfRangeInteger(let text)?: throw fail(ParseProblem.integerOutOfRange(text))
        default: throw typeError(expected: "an integer")
        }
    }

    /// A boolean, or nil if absent or null.
    func optionalBool() throws(InputError) -> Bool? {
        switch value {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        default: throw typeError(expected: "a boolean")
        }
    }

    /// A list of strings (absent or null: empty), each with its own field for error messages.
    func stringElements() throws(InputError) -> [(text: String, field: Field)] {
        var out: [(text: String, field: Field)] = []
        for element in try elements() {
            guard case .string(let text)? = element.value else {
                throw element.typeError(expected: "a string")
            }
            out.append((text, element))
        }
        return out
    }

    /// An object whose values are all strings, such as `metadata.labels`.
    func stringMap() throws(InputError) -> [String: String] {
        // The usual case, an object of strings, without a field per member.
        if case .map(let members)? = value {
            var out: [String: String] = [:]
            out.reserveCapacity(members.count)
            for (key, member) in members {
                guard case .string(let text) = member else { break }
                out[key] = text
            }
            if out.count == members.count { return out }
        }
        var out: [String: String] = [:]
        for (key, member) in try members() {
            switch member.value {
            case .string(let text)?: out[key] = text
            case nil, .null?: out[key] = ""
            default: throw member.typeError(expected: "a string")
            }
        }
        return out
    }
}
