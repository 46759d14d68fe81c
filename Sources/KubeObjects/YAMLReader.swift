import CYAML

/// A YAML stream parser on libyaml's event API that builds ``Value``s only for the parts a
/// ``Keep`` schema names (and for anchored nodes, which an alias may use anywhere).
///
/// Nothing in it recurses: nesting costs one frame of an explicit stack, limited to
/// ``InputLimits/maxDepth``. Aliases share the anchored value instead of copying it and are
/// limited in number (``InputLimits/maxAliases``) and in the nodes they stand for
/// (``InputLimits/maxAliasExpansion``), so alias bombs end in an error. Duplicate keys are
/// refused in every mapping that is built.
enum YAMLReader {
    /// The documents of the stream in `bytes`; empty documents are null.
    ///
    /// With `itemSink`, the `items` of the first document's top-level mapping go to the sink one
    /// by one instead of into the document (see ``DocumentParser``); if another document
    /// follows them, parsing stops and the result is nil: the caller reads the stream again
    /// without a sink.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, itemSink: ((Value, Int) -> Void)?) throws(ParseFailure) -> [Value]? {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return [] }
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else {
            throw .content("cannot initialise the YAML parser", at: 0)
        }
        defer { yaml_parser_delete(parser) }
        yaml_parser_set_input_string(parser, base, bytes.count)

        var builder = YAMLBuilder(itemSink: itemSink)
        var event = yaml_event_t()
        while true {
            guard yaml_parser_parse(parser, &event) == 1 else { throw failure(of: parser.pointee) }
            defer { yaml_event_delete(&event) }
            if event.type == YAML_STREAM_END_EVENT { break }
            if event.type == YAML_DOCUMENT_START_EVENT && builder.streamedItems > 0 { return nil }
            try builder.handle(event)
        }
        return builder.documents
    }

    /// libyaml's error, at its position.
    private static func failure(of parser: yaml_parser_t) -> ParseFailure {
        var problem = parser.problem.map { String(cString: $0) } ?? "unknown error"
        if parser.error == YAML_READER_ERROR {
            if problem == "invalid leading UTF-8 octet" || problem == "invalid trailing UTF-8 octet"
                || problem == "incomplete UTF-8 octet sequence" || problem == "invalid Unicode character" {
                problem = "invalid UTF-8 (\(problem))"
            }
            return .syntax(problem, at: parser.problem_offset)
        }
        if let context = parser.context {
            problem += " (\(String(cString: context)) at \(position(parser.context_mark)))"
        }
        return ParseFailure(kind: .syntax, offset: nil, position: position(parser.problem_mark), problem: problem)
    }

    static func position(_ mark: yaml_mark_t) -> TextPosition {
        TextPosition(line: mark.line + 1, column: mark.column + 1)
    }
}

/// Turns libyaml events into documents.
private struct YAMLBuilder {
    /// A mapping or sequence being read.
    struct Frame {
        var isMapping: Bool
        /// Whether the parent uses this node's value.
        var wanted: Bool
        /// Whether members are built; if not, the node's value is an empty placeholder.
        var build: Bool
        var anchor: String?
        /// Sequence: schema of the elements. Mapping: nil = keep every member.
        var elementKeep: Keep = .everything
        var memberSchema: [String: Keep]?
        var items: [Value] = []
        var members: [String: Value] = [:]
        var merged: [[String: Value]] = []
        var skippedKeys = SeenKeys()
        var expectingKey = true
        var pendingKey = ""
        var pendingMerge = false
        /// Schema of the pending member's value; nil: skipped.
        var pendingKeep: Keep?
        /// Nodes this value stands for, counting what aliases in it stand for.
        var nodes = 1
        /// The first document's `items`: elements go to the item sink.
        var streaming = false
    }

    /// Where the next node goes.
    struct Slot {
        var isKey: Bool
        var wanted: Bool
        var keep: Keep
    }

    var documents: [Value] = []
    /// Elements handed to `itemSink` so far.
    private(set) var streamedItems = 0
    private let itemSink: ((Value, Int) -> Void)?
    private var stack: [Frame] = []
    private var anchors: [String: (value: Value, nodes: Int)] = [:]
    private var aliases = 0
    private var expanded = 0

    init(itemSink: ((Value, Int) -> Void)?) {
        self.itemSink = itemSink
    }

    mutating func handle(_ event: yaml_event_t) throws(ParseFailure) {
        let position = YAMLReader.position(event.start_mark)
        switch event.type {
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let text = UnsafeBufferPointer(start: scalar.value, count: scalar.length)
            let tag = scalar.tag.map { String(cString: $0) }
            try handleScalar(text, tag: tag, plain: scalar.style == YAML_PLAIN_SCALAR_STYLE && tag == nil,
                             anchor: scalar.anchor.map { String(cString: $0) }, at: position)
        case YAML_ALIAS_EVENT:
            try handleAlias(event.data.alias.anchor.map { String(cString: $0) } ?? "", at: position)
        case YAML_SEQUENCE_START_EVENT:
            try start(mapping: false, anchor: event.data.sequence_start.anchor.map { String(cString: $0) }, at: position)
        case YAML_MAPPING_START_EVENT:
            try start(mapping: true, anchor: event.data.mapping_start.anchor.map { String(cString: $0) }, at: position)
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            try end(at: position)
        default:
            break  // stream and document boundaries
        }
    }

    private func nextSlot() -> Slot {
        guard let top = stack.last else { return Slot(isKey: false, wanted: true, keep: .kubernetesObject) }
        guard top.build else { return Slot(isKey: false, wanted: false, keep: .everything) }
        if !top.isMapping { return Slot(isKey: false, wanted: true, keep: top.elementKeep) }
        if top.expectingKey { return Slot(isKey: true, wanted: true, keep: .everything) }
        return Slot(isKey: false, wanted: top.pendingKeep != nil, keep: top.pendingKeep ?? .everything)
    }

    private func content(_ problem: String, at position: TextPosition) -> ParseFailure {
        ParseFailure(kind: .content, offset: nil, position: position, problem: problem)
    }

    private mutating func handleScalar(_ text: UnsafeBufferPointer<UInt8>, tag: String?, plain: Bool,
                                       anchor: String?, at position: TextPosition) throws(ParseFailure) {
        let slot = nextSlot()
        if slot.isKey {
            let key = String(decoding: text, as: UTF8.self)
            if let anchor { anchors[anchor] = (.string(key), 1) }
            try takeKey(key, isMerge: plain && key == "<<", at: position)
            return
        }
        guard slot.wanted || anchor != nil else { return try deliver(nil, nodes: 1, at: position) }
        let value: Value
        do {
            value = try YAMLScalar.resolve(text, tag: tag, plain: plain)
        } catch {
            throw content(error.message, at: position)
        }
        if let anchor { anchors[anchor] = (value, 1) }
        try deliver(slot.wanted ? value : nil, nodes: 1, at: position)
    }

    private mutating func handleAlias(_ name: String, at position: TextPosition) throws(ParseFailure) {
        aliases += 1
        if aliases > InputLimits.maxAliases {
            throw content("more than \(InputLimits.maxAliases) aliases", at: position)
        }
        guard let anchored = anchors[name] else {
            throw ParseFailure(kind: .syntax, offset: nil, position: position, problem: "unknown alias *\(name)")
        }
        let slot = nextSlot()
        if slot.isKey {
            guard case .string(let key) = anchored.value else {
                throw content("a mapping key must be a scalar", at: position)
            }
            try takeKey(key, isMerge: false, at: position)
            return
        }
        guard slot.wanted else { return try deliver(nil, nodes: 0, at: position) }
        expanded += anchored.nodes
        if expanded > InputLimits.maxAliasExpansion {
            throw content("aliases expand to more than \(InputLimits.maxAliasExpansion) nodes", at: position)
        }
        try deliver(anchored.value, nodes: anchored.nodes, at: position)
    }

    /// A key of the mapping on top of the stack.
    private mutating func takeKey(_ key: String, isMerge: Bool, at position: TextPosition) throws(ParseFailure) {
        let top = stack.count - 1
        stack[top].expectingKey = false
        stack[top].pendingKey = key
        stack[top].pendingMerge = isMerge
        if isMerge {
            stack[top].pendingKeep = .everything
            return
        }
        if stack[top].members[key] != nil {
            throw content(ParseProblem.duplicateKey(key), at: position)
        }
        if let schema = stack[top].memberSchema {
            stack[top].pendingKeep = schema[key]
            if schema[key] == nil && !stack[top].skippedKeys.insert(key) {
                throw content(ParseProblem.duplicateKey(key), at: position)
            }
        } else {
            stack[top].pendingKeep = .everything
        }
    }

    private mutating func start(mapping: Bool, anchor: String?, at position: TextPosition) throws(ParseFailure) {
        let slot = nextSlot()
        if slot.isKey { throw content("a mapping key must be a scalar", at: position) }
        if stack.count >= InputLimits.maxDepth { throw content(ParseProblem.tooDeep(), at: position) }
        var frame = Frame(isMapping: mapping, wanted: slot.wanted, build: false, anchor: anchor)
        let keep = anchor == nil ? slot.keep : .everything
        if slot.wanted || anchor != nil {
            switch (mapping, keep) {
            case (_, .everything):
                frame.build = true
            case (false, .list(let element)):
                frame.build = true
                frame.elementKeep = element
            case (true, _):
                if let members = keep.members {
                    frame.build = true
                    frame.memberSchema = members
                }
            default:
                break
            }
        }
        // The `items` of the first document's top-level mapping.
        if !mapping, frame.build, anchor == nil, itemSink != nil, documents.isEmpty, stack.count == 1,
           stack[0].isMapping, stack[0].anchor == nil, stack[0].memberSchema != nil,
           !stack[0].pendingMerge, stack[0].pendingKey == "items" {
            frame.streaming = true
        }
        stack.append(frame)
    }

    private mutating func end(at position: TextPosition) throws(ParseFailure) {
        guard let frame = stack.popLast() else { return }
        var value: Value
        if frame.isMapping {
            var members = frame.members
            for merged in frame.merged {
                for (key, member) in merged where members[key] == nil {
                    if let schema = frame.memberSchema, schema[key] == nil { continue }
                    members[key] = member
                }
            }
            value = .map(members)
        } else {
            value = .list(frame.items)
        }
        if let anchor = frame.anchor { anchors[anchor] = (value, frame.nodes) }
        try deliver(frame.wanted ? value : nil, nodes: frame.nodes, at: position)
    }

    /// Hands a finished node to its parent (or the document list); nil: a node the parent
    /// does not use, which still ends a mapping member.
    private mutating func deliver(_ value: Value?, nodes: Int, at position: TextPosition) throws(ParseFailure) {
        let top = stack.count - 1
        guard top >= 0 else {
            documents.append(value ?? .null)
            return
        }
        guard stack[top].build else { return }
        stack[top].nodes += nodes
        if !stack[top].isMapping {
            guard let value else { return }
            if stack[top].streaming, let itemSink {
                itemSink(value, streamedItems)
                streamedItems += 1
            } else {
                stack[top].items.append(value)
            }
            return
        }
        stack[top].expectingKey = true
        guard let value else { return }
        if stack[top].pendingMerge {
            switch value {
            case .map(let members):
                stack[top].merged.append(members)
            case .list(let items):
                for item in items {
                    guard case .map(let members) = item else {
                        throw content("a merge key (<<) takes a mapping or a list of mappings", at: position)
                    }
                    stack[top].merged.append(members)
                }
            default:
                throw content("a merge key (<<) takes a mapping or a list of mappings", at: position)
            }
            return
        }
        if stack[top].pendingKeep != nil {
            stack[top].members[stack[top].pendingKey] = value
        }
    }
}
