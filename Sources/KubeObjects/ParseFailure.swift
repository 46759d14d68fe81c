/// A problem found by a parser at a byte offset of its input; ``DocumentParser`` turns it into
/// an ``InputError`` with line and column.
struct ParseFailure: Error {
    enum Kind {
        /// Not valid JSON / YAML.
        case syntax
        /// Valid syntax, but refused: a duplicate key, an integer out of range, a limit.
        case content
    }

    var kind: Kind
    /// Byte offset into the input, or nil when `position` is known instead.
    var offset: Int?
    /// Line and column when the parser reports them itself (libyaml).
    var position: TextPosition?
    var problem: String

    static func syntax(_ problem: String, at offset: Int) -> ParseFailure {
        ParseFailure(kind: .syntax, offset: offset, position: nil, problem: problem)
    }

    static func content(_ problem: String, at offset: Int) -> ParseFailure {
        ParseFailure(kind: .content, offset: offset, position: nil, problem: problem)
    }

    /// `invalid JSON: line 3, column 7: ...` for syntax errors, `line 3, column 7: ...` otherwise.
    func message(format: String, input: UnsafeBufferPointer<UInt8>) -> String {
        let where_ = position ?? TextPosition(offset: offset ?? 0, in: input)
        switch kind {
        case .syntax: return "invalid \(format): \(where_): \(problem)"
        case .content: return "\(where_): \(problem)"
        }
    }
}

/// Messages shared by the JSON and YAML readers.
enum ParseProblem {
    static func tooDeep() -> String { "nested deeper than \(InputLimits.maxDepth) levels" }

    static func duplicateKey(_ key: String) -> String { "duplicate key \(quoted(key))" }

    /// `literal` as ``shortLiteral(_:)`` gives it.
    static func integerOutOfRange(_ literal: String) -> String {
        "integer \(literal) is out of range (\(Int.min) to \(Int.max))"
    }

    static func numberOutOfRange(_ literal: some Collection<UInt8>) -> String {
        "number \(shortLiteral(literal)) is out of range"
    }
}
