/// Bounds that keep hostile input from costing unbounded time, memory or stack
/// (README, "Input limits").
public enum InputLimits {
    /// Largest input accepted, in bytes (1 GiB).
    public static let maxInputBytes = 1 << 30
    /// Deepest nesting of objects and lists (JSON) or mappings and sequences (YAML).
    public static let maxDepth = 256
    /// Most YAML aliases (`*name`) in one input.
    public static let maxAliases = 10_000
    /// Most nodes that the YAML aliases of one input may stand for in total.
    public static let maxAliasExpansion = 1_000_000
    /// Longest number or other literal shown in an error message; longer ones end in `…`.
    static let maxQuotedLength = 40
    /// Longest string (in Unicode scalars) shown in an error message; longer ones end in `…`.
    static let maxQuotedCharacters = 256
}

/// Line and column (both from 1, columns in characters) of a byte offset, for messages.
struct TextPosition: CustomStringConvertible {
    var line: Int
    var column: Int

    init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    /// Counts lines and characters (not UTF-8 continuation bytes) up to `offset`.
    init(offset: Int, in bytes: UnsafeBufferPointer<UInt8>) {
        var line = 1, column = 1
        for byte in bytes[..<min(max(offset, 0), bytes.count)] {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        self.init(line: line, column: column)
    }

    var description: String { "line \(line), column \(column)" }
}

/// A literal from the input for a message: at most ``InputLimits/maxQuotedLength``
/// characters, longer ones cut with `…`.
func shortLiteral(_ bytes: some Collection<UInt8>) -> String {
    let limit = InputLimits.maxQuotedLength
    if bytes.count <= limit { return String(decoding: bytes, as: UTF8.self) }
    return String(decoding: bytes.prefix(limit), as: UTF8.self) + "…"
}
