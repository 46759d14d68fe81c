/// Turns the bytes of one input into its documents, as ``Value``s.
///
/// JSON (first non-blank character `{` or `[`) goes through ``JSONReader``; when that finds a
/// syntax error, the input is tried as YAML (of which JSON is a subset, so flow-style YAML such
/// as `{kind: Service}` is read), and the JSON error is reported if that fails too. Anything
/// else is a YAML stream of one or more `---` separated documents (``YAMLReader``). Empty
/// documents are dropped. Both readers build only what the decoders read (``Keep``).
enum DocumentParser {
    /// The documents of the input.
    ///
    /// With `itemSink`, the `items` of a top-level object (JSON, or the first YAML document)
    /// are handed to it one by one as they are parsed and left out of the returned document
    /// (its `items` is empty), so that a big List need not be held whole; `itemsStreamed` then
    /// says that this happened. Items may reach the sink before a later syntax error is found,
    /// and then count for nothing (`itemsStreamed` is false).
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, source: String,
                      itemSink: ((Value, Int) -> Void)?) throws(InputError) -> (documents: [Value], itemsStreamed: Bool) {
        var streamed = false
        let sink: ((Value, Int) -> Void)? = itemSink.map { sink in
            { value, index in
                streamed = true
                sink(value, index)
            }
        }
        var streamable = false
        let documents = try parse(bytes, source: source, sink: sink, streamable: &streamable)
        return (documents, streamed && streamable && documents.count == 1)
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>, source: String, sink: ((Value, Int) -> Void)?,
                              streamable: inout Bool) throws(InputError) -> [Value] {
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
                let value = try JSONReader.parse(bytes, from: start, keep: keep, itemSink: keep.members == nil ? nil : sink)
                streamable = true
                switch value {
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
                guard error.kind == .syntax, let documents = try? YAMLReader.parse(bytes, itemSink: nil) else {
                    throw jsonError
                }
                return documents.filter { $0 != .null }
            }
        }
        do throws(ParseFailure) {
            if let sink, let documents = try YAMLReader.parse(bytes, itemSink: sink) {
                streamable = true
                return documents.filter { $0 != .null }
            }
            // No sink, or a second document followed a streamed first one: read it all.
            return try YAMLReader.parse(bytes, itemSink: nil)?.filter { $0 != .null } ?? []
        } catch {
            throw InputError(source: source, problem: error.message(format: "YAML", input: bytes))
        }
    }
}
