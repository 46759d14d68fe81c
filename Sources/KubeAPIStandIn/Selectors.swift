/// A label selector as the API server parses the equality-based forms: comma-joined
/// requirements `key`, `!key`, `key=value`, `key==value`, `key!=value`.
struct LabelSelector: Sendable {
    enum Requirement: Sendable {
        case exists(String)
        case absent(String)
        case equals(String, String)
        case differs(String, String)
    }

    let requirements: [Requirement]

    /// Parses `text`; throws a message the server returns as 400 BadRequest.
    init(_ text: String) throws(SelectorError) {
        var requirements: [Requirement] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let term = part.trimmedSpaces
            if term.isEmpty {
                if text.isEmpty { break }
                throw SelectorError("unable to parse requirement: empty term in \"\(text)\"")
            }
            if term.contains(" in ") || term.contains(" notin ") || term.contains("(") {
                throw SelectorError("set-based requirement \"\(term)\" is not supported by the stand-in")
            }
            if let range = term.range(of: "!=") {
                requirements.append(.differs(try Self.key(term[..<range.lowerBound]), String(term[range.upperBound...])))
            } else if let range = term.range(of: "==") {
                requirements.append(.equals(try Self.key(term[..<range.lowerBound]), String(term[range.upperBound...])))
            } else if let range = term.range(of: "=") {
                requirements.append(.equals(try Self.key(term[..<range.lowerBound]), String(term[range.upperBound...])))
            } else if term.hasPrefix("!") {
                requirements.append(.absent(try Self.key(term.dropFirst())))
            } else {
                requirements.append(.exists(try Self.key(Substring(term))))
            }
        }
        self.requirements = requirements
    }

    private static func key(_ text: Substring) throws(SelectorError) -> String {
        let key = text.trimmedSpaces
        guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || "-_./".contains($0) }) else {
            throw SelectorError("invalid label key \"\(key)\"")
        }
        return key
    }

    func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { requirement in
            switch requirement {
            case .exists(let key): return labels[key] != nil
            case .absent(let key): return labels[key] == nil
            case .equals(let key, let value): return labels[key] == value
            case .differs(let key, let value): return labels[key] != value
            }
        }
    }
}

/// A field selector over the fields every object supports: `metadata.name` and
/// `metadata.namespace`, with `=`, `==` or `!=`, comma-joined.
struct FieldSelector: Sendable {
    private let requirements: [(field: String, value: String, equal: Bool)]

    init(_ text: String) throws(SelectorError) {
        var requirements: [(String, String, Bool)] = []
        for part in text.split(separator: ",") {
            let term = part.trimmedSpaces
            let equal: Bool
            let pieces: [String]
            if term.contains("!=") {
                equal = false
                pieces = term.components(separatedBy: "!=")
            } else {
                equal = true
                pieces = term.replacingOccurrences(of: "==", with: "=").components(separatedBy: "=")
            }
            guard pieces.count == 2 else { throw SelectorError("invalid field selector \"\(term)\"") }
            guard pieces[0] == "metadata.name" || pieces[0] == "metadata.namespace" else {
                throw SelectorError("field label not supported: \(pieces[0])")
            }
            requirements.append((pieces[0], pieces[1], equal))
        }
        self.requirements = requirements
    }

    func matches(name: String, namespace: String) -> Bool {
        requirements.allSatisfy { requirement in
            let actual = requirement.field == "metadata.name" ? name : namespace
            return (actual == requirement.value) == requirement.equal
        }
    }
}

/// A selector that cannot be parsed; the server answers 400 with this message.
struct SelectorError: Error, Sendable {
    let message: String
    init(_ message: String) { self.message = message }
}

extension StringProtocol {
    var trimmedSpaces: String {
        var slice = Substring(self)
        while slice.first == " " { slice = slice.dropFirst() }
        while slice.last == " " { slice = slice.dropLast() }
        return String(slice)
    }
}
