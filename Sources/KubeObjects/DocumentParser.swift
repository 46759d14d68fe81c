/// Turns the bytes of one input into its documents, as ``Value``s.
///
/// JSON (first non-blank character `{` or `[`) goes through ``JSONReader``; when that finds a
/// syntax error, the input is tried as YAML (of which JSON is a subset, so flow-style YAML such
/// as `{kind: Service}` is read), and the JSON error is reported if that fails too. Anything
/// else is a YAML stream of one or more `---` separated documents (``YAMLReader``). Empty
/// documents are dropped. Both readers build only what the decoders read (``Keep``).
enum DocumentParser {
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, source: String) throws(InputError) -> [Value] {
        guard bytes.count <= InputLimits.maxInputBytes else {
            throw InputError(source: source, problem: "input larger than \(InputLimits.maxInputBytes) bytes")
        }
        var start = 0
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { start = 3 }
        var first = start
        while first < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[first]) { first += 1 }
        if first == bytes.count { return [] }

        if bytes[first] == UInt8(ascii: "{") || bytes[first] == UInt8(ascii: "[") {
            let keep: Keep = bytes[first] == UInt8(ascii: "[") ? .list(.kubernetesObject) : .kubernetesObject
            do throws(ParseFailure) {
                switch try JSONReader.parse(bytes, from: start, keep: keep) {
                case .null:
                    return []
                case .list(let items):
                    // A bare JSON array of objects reads like a `v1 List`.
                    return [.map(["apiVersion": .string("v1"), "kind": .string("List"), "items": .list(items)])]
                case let value:
                    return [value]
                }
            } catch {
                let jsonError = InputError(source: source, problem: error.message(format: "JSON", input: bytes))
                guard error.kind == .syntax, let documents = try? YAMLReader.parse(bytes) else { throw jsonError }
                return documents.filter { $0 != .null }
            }
        }
        do throws(ParseFailure) {
            return try YAMLReader.parse(bytes).filter { $0 != .null }
        } catch {
            throw InputError(source: source, problem: error.message(format: "YAML", input: bytes))
        }
    }
}
