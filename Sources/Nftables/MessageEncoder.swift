import Netlink

/// Encodes `Operation`s as nf_tables messages: the wire objects of the Netlink module,
/// which libnftnl lays out as nft 1.0.6 does.
///
/// Sets created in the transaction get an NFTA_SET_ID, and lookups of those sets carry
/// it too, as nft does, so the kernel binds them within the one transaction.
struct MessageEncoder {
    private var setIDs: [TableFamily: [String: UInt32]] = [:]

    init(transaction: Transaction) {
        var next: UInt32 = 1
        for case .addSet(let family, _, let set) in transaction.operations {
            setIDs[family, default: [:]][set.name] = next
            next += 1
        }
    }

    /// Message type and the flags beyond NLM_F_REQUEST/NLM_F_ACK.
    func header(for operation: Operation) -> (type: UInt16, flags: UInt16, family: UInt8) {
        let create = NetlinkFlags.create
        switch operation {
        case .addTable(let family, _): return (NftMessage.newTable, create, family.protocolFamily)
        case .deleteTable(let family, _): return (NftMessage.deleteTable, 0, family.protocolFamily)
        case .addChain(let family, _, _): return (NftMessage.newChain, create, family.protocolFamily)
        case .flushChain(let family, _, _): return (NftMessage.deleteRule, 0, family.protocolFamily)
        case .deleteChain(let family, _, _): return (NftMessage.deleteChain, 0, family.protocolFamily)
        case .addSet(let family, _, _): return (NftMessage.newSet, create, family.protocolFamily)
        case .deleteSet(let family, _, _): return (NftMessage.deleteSet, 0, family.protocolFamily)
        case .addElements(let family, _, _, _): return (NftMessage.newElements, create, family.protocolFamily)
        case .deleteElements(let family, _, _, _): return (NftMessage.deleteElements, 0, family.protocolFamily)
        case .destroyElements(let family, _, _, _): return (NftMessage.destroyElements, 0, family.protocolFamily)
        case .addRule(let family, _, _, _): return (NftMessage.newRule, create | NetlinkFlags.append, family.protocolFamily)
        }
    }

    /// Writes the payload of `operation` into a message whose header is already in place.
    ///
    /// - Throws: ``NetlinkError/allocationFailed(object:)`` when libnftnl runs out of memory.
    func encode(_ operation: Operation, into message: NetlinkMessageWriter) throws(NetlinkError) {
        switch operation {
        case .addTable(_, let name):
            try message.putTable(NftTable(name: name, flags: 0))
        case .deleteTable(_, let name):
            try message.putTable(NftTable(name: name))
        case .addChain(_, let table, let chain):
            var wire = NftChain(table: table, name: chain.name)
            if let base = chain.base {
                wire.hook = base.hook.number
                wire.priority = base.priority
                wire.type = base.type.rawValue
                wire.policy = UInt32(VerdictCode.accept)
            }
            try message.putChain(wire)
        case .deleteChain(_, let table, let chain):
            try message.putChain(NftChain(table: table, name: chain))
        case .flushChain(_, let table, let chain):
            try message.putRule(NftRule(table: table, chain: chain))
        case .addSet(let family, let table, let set):
            try message.putSet(declaration(of: set, family: family, table: table))
        case .deleteSet(let family, let table, let set):
            try message.putSet(NftSet(family: family.protocolFamily, table: table, name: set))
        case .addElements(let family, let table, let set, let elements),
             .deleteElements(let family, let table, let set, let elements),
             .destroyElements(let family, let table, let set, let elements):
            var wire = NftSet(family: family.protocolFamily, table: table, name: set.name)
            if case .addElements = operation { wire.id = setIDs[family]?[set.name] }
            wire.elements = elements.map { Self.wireElement($0) }
            try message.putElements(wire)
        case .addRule(let family, let table, let chain, let rule):
            let encoder = RuleEncoder(family: family, setIDs: setIDs[family] ?? [:])
            try message.putRule(encoder.makeRule(rule, table: table, chain: chain))
        }
    }

    /// Key and data types, lengths, flags, size, id, timeout, userdata and the `counter`
    /// of every element, as nft declares them.
    func declaration(of set: NamedSet, family: TableFamily, table: String) -> NftSet {
        var wire = NftSet(family: family.protocolFamily, table: table, name: set.name)
        wire.flags = Self.wireFlags(of: set)
        wire.keyType = concatenatedTypeID(set.key.dataTypes)
        wire.keyLength = UInt32(SetLayout.length(of: set.key))
        switch set.data {
        case nil:
            break
        case .verdict:
            wire.dataType = nftVerdictDataType
            wire.dataLength = 0
        case .fields(let fields):
            wire.dataType = concatenatedTypeID(fields.dataTypes)
            wire.dataLength = UInt32(SetLayout.length(of: fields))
        }
        wire.size = set.size.map { UInt32(clamping: $0) }
        wire.id = setIDs[family]?[set.name]
        wire.timeout = set.timeout
        wire.userData = SetUserData.encode(set)
        if set.counter { wire.expressions = [.counter(packets: 0, bytes: 0)] }
        if set.flags.contains(.interval), set.key.dataTypes.count > 1 {
            // The length of each field, as nft describes a concatenation of ranges.
            wire.fieldLengths = set.key.dataTypes.map { UInt8($0.size) }
        }
        return wire
    }

    /// The kernel's set flags for `set`.
    static func wireFlags(of set: NamedSet) -> UInt32 {
        var flags: UInt32 = set.isMap ? NftSetFlag.map : 0
        if set.flags.contains(.timeout) { flags |= NftSetFlag.timeout }
        if set.flags.contains(.dynamic) { flags |= NftSetFlag.dynamic }
        if set.flags.contains(.interval) {
            flags |= NftSetFlag.interval
            if set.key.dataTypes.count > 1 { flags |= NftSetFlag.concatenation }
        }
        return flags
    }

    /// The wire form of one element.
    static func wireElement(_ element: SetElement) -> NftSetElement {
        var wire = NftSetElement(key: SetLayout.bytes(of: element.key), timeout: element.timeout)
        wire.keyEnd = element.keyEnd.map(SetLayout.bytes(of:))
        wire.userData = element.comment.map(ElementComment.userData)
        switch element.data {
        case nil:
            break
        case .verdict(let verdict):
            wire.verdict = verdict.code
            wire.chain = verdict.chain
        case .values(let values):
            wire.data = SetLayout.bytes(of: values)
        }
        return wire
    }
}
