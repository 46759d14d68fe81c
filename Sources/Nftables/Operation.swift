/// One nf_tables change: a message of a transaction, before it is encoded.
///
/// Operations are plain values; `MessageEncoder` turns each into one netlink message
/// when the transaction is committed, so large transactions never hold libnftnl objects.
public enum Operation: Hashable, Sendable {
    case addTable(TableFamily, String)
    case deleteTable(TableFamily, String)
    /// Adds a chain without its rules (rules are separate operations).
    case addChain(TableFamily, table: String, Chain)
    case flushChain(TableFamily, table: String, chain: String)
    case deleteChain(TableFamily, table: String, chain: String)
    case addSet(TableFamily, table: String, NamedSet)
    case deleteSet(TableFamily, table: String, set: String)
    /// Adds elements (at most one message's worth; see `Transaction.addElements`). The set
    /// value describes the set's layout; its own element list is not used.
    case addElements(TableFamily, table: String, set: NamedSet, ArraySlice<SetElement>)
    case deleteElements(TableFamily, table: String, set: NamedSet, ArraySlice<SetElement>)
    /// Deletes elements that may or may not be there (`NFT_MSG_DESTROYSETELEM`): elements of
    /// a dynamic set that the packet path adds, which nftproxy retires without knowing
    /// whether a packet ever created them.
    case destroyElements(TableFamily, table: String, set: NamedSet, ArraySlice<SetElement>)
    case addRule(TableFamily, table: String, chain: String, Rule)

    /// What the operation does, in nft words: "add rule ip nftproxy services".
    public var summary: String {
        switch self {
        case .addTable(let family, let table): return "add table \(family.rawValue) \(table)"
        case .deleteTable(let family, let table): return "delete table \(family.rawValue) \(table)"
        case .addChain(let family, let table, let chain): return "add chain \(family.rawValue) \(table) \(chain.name)"
        case .flushChain(let family, let table, let chain): return "flush chain \(family.rawValue) \(table) \(chain)"
        case .deleteChain(let family, let table, let chain): return "delete chain \(family.rawValue) \(table) \(chain)"
        case .addSet(let family, let table, let set):
            return "add \(set.isMap ? "map" : "set") \(family.rawValue) \(table) \(set.name)"
        case .deleteSet(let family, let table, let set): return "delete set \(family.rawValue) \(table) \(set)"
        case .addElements(let family, let table, let set, let elements):
            return "add element \(family.rawValue) \(table) \(set.name) (\(elements.count) elements"
                + (elements.first.map { ", first { \(ScriptRenderer().render($0)) }" } ?? "") + ")"
        case .deleteElements(let family, let table, let set, let elements):
            return "delete element \(family.rawValue) \(table) \(set.name) (\(elements.count) elements"
                + (elements.first.map { ", first { \(ScriptRenderer().render($0)) }" } ?? "") + ")"
        case .destroyElements(let family, let table, let set, let elements):
            return "destroy element \(family.rawValue) \(table) \(set.name) (\(elements.count) elements"
                + (elements.first.map { ", first { \(ScriptRenderer().render($0)) }" } ?? "") + ")"
        case .addRule(let family, let table, let chain, let rule):
            return "add rule \(family.rawValue) \(table) \(chain) \(ScriptRenderer().render(rule))"
        }
    }
}

/// An ordered list of operations the kernel applies atomically, or not at all.
public struct Transaction: Hashable, Sendable {
    public private(set) var operations: [Operation] = []

    public init() {}

    public var isEmpty: Bool { operations.isEmpty }

    public mutating func append(_ operation: Operation) { operations.append(operation) }
    /// Appends the operations of another transaction, after this one's.
    public mutating func append(contentsOf other: Transaction) { operations += other.operations }

    /// Largest payload of set elements put into one message, well under the 64 KiB a
    /// netlink attribute nest can hold.
    static let elementBytesPerMessage = 48 * 1024

    /// How many elements of `set` fit in one message.
    static func elementsPerMessage(_ set: NamedSet) -> Int {
        let keyLength = SetLayout.length(of: set.key)
        let dataLength: Int
        switch set.data {
        case nil: dataLength = 0
        case .verdict: dataLength = 16 + 32   // verdict code + chain name
        case .fields(let fields): dataLength = SetLayout.length(of: fields)
        }
        // Element nest, key nest + value, data nest + value, attribute headers.
        let perElement = keyLength + dataLength + 32
        return max(1, elementBytesPerMessage / perElement)
    }

    /// The bytes ``elementsPerMessage(_:)`` reckons per element of `set` (without a comment).
    static func elementBytes(_ set: NamedSet) -> Int {
        max(1, elementBytesPerMessage / elementsPerMessage(set))
    }

    /// `elements` in runs that each fit one message: ``elementsPerMessage(_:)`` of them while
    /// they carry no comment; a comment (element userdata, up to 256 bytes) makes its
    /// element that much larger, and the run is cut by bytes instead.
    static func messageChunks(_ elements: [SetElement], of set: NamedSet) -> [ArraySlice<SetElement>] {
        let perMessage = elementsPerMessage(set)
        guard elements.contains(where: { $0.comment != nil }) else { return elements.chunked(perMessage) }
        let budget = perMessage * elementBytes(set)
        var chunks: [ArraySlice<SetElement>] = []
        var start = elements.startIndex, used = 0
        for index in elements.indices {
            // The userdata attribute: its header, the comment's own header, the text and its zero, padded.
            let size = elementBytes(set) + (elements[index].comment.map { ($0.utf8.count + 3 + 4 + 3) / 4 * 4 } ?? 0)
            if used + size > budget, index > start {
                chunks.append(elements[start..<index])
                start = index
                used = 0
            }
            used += size
        }
        if start < elements.endIndex { chunks.append(elements[start...]) }
        return chunks
    }

    /// Adds elements, split into as many messages as they need.
    public mutating func addElements(_ elements: [SetElement], to set: NamedSet, family: TableFamily, table: String) {
        let shape = set.withoutElements
        for chunk in Self.messageChunks(elements, of: set) {
            append(.addElements(family, table: table, set: shape, chunk))
        }
    }

    /// Deletes elements, split into as many messages as they need.
    public mutating func deleteElements(_ elements: [SetElement], from set: NamedSet, family: TableFamily, table: String) {
        let shape = set.withoutElements
        for chunk in Self.messageChunks(elements, of: set) {
            append(.deleteElements(family, table: table, set: shape, chunk))
        }
    }

    /// Destroys elements (deleted if there, no error if not), split into as many messages as they need.
    public mutating func destroyElements(_ elements: [SetElement], from set: NamedSet, family: TableFamily,
                                         table: String) {
        let shape = set.withoutElements
        for chunk in Self.messageChunks(elements, of: set) {
            append(.destroyElements(family, table: table, set: shape, chunk))
        }
    }

    /// Creates `table` from nothing: chains, sets, elements, then rules.
    public mutating func create(_ table: Table) {
        append(.addTable(table.family, table.name))
        for chain in table.chains {
            append(.addChain(table.family, table: table.name, Chain(name: chain.name, base: chain.base)))
        }
        for set in table.sets {
            append(.addSet(table.family, table: table.name, set.withoutElements))
            addElements(set.elements, to: set, family: table.family, table: table.name)
        }
        for chain in table.chains {
            for rule in chain.rules {
                append(.addRule(table.family, table: table.name, chain: chain.name, rule))
            }
        }
    }

    /// Replaces whatever table of that name exists (or none) with `table`, atomically.
    public mutating func replace(_ table: Table) {
        append(.addTable(table.family, table.name))
        append(.deleteTable(table.family, table.name))
        create(table)
    }

    /// Removes the table if it exists; harmless if it does not.
    public mutating func remove(family: TableFamily, table: String) {
        append(.addTable(family, table))
        append(.deleteTable(family, table))
    }
}

extension NamedSet {
    /// The declaration alone: name, key and data types.
    public var withoutElements: NamedSet {
        NamedSet(name: name, key: key, data: data, size: size, flags: flags, timeout: timeout, counter: counter)
    }
}

/// Byte layout of set keys and data in the kernel.
enum SetLayout {
    /// Concatenated fields are each padded to 4 bytes; a single field keeps its size.
    static func length(of fields: SetFields) -> Int {
        let types = fields.dataTypes
        if types.count == 1 { return types[0].size }
        return types.reduce(0) { $0 + ($1.size + 3) / 4 * 4 }
    }

    /// The bytes of a key or data tuple, laid out like `length(of:)`.
    static func bytes(of values: [Value]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 16)
        for value in values {
            value.appendBytes(to: &out)
            if values.count > 1 {
                out.append(contentsOf: repeatElement(0, count: (4 - value.size % 4) % 4))
            }
        }
        return out
    }
}

extension Array {
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
