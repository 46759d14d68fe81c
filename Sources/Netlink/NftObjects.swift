import CNetfilter

// nf_tables objects as the wire carries them: what an nf_tables message says about a
// table, chain, rule, set or set element. Optional fields are left out of the message
// when nil. The Nftables module maps its IR to and from these; libnftnl does the
// attribute layout (the same as nft 1.0.6 writes).

/// A table (`NFT_MSG_NEWTABLE`, `NFT_MSG_DELTABLE`, a dumped table).
public struct NftTable: Hashable, Sendable {
    public var name: String
    /// `NFTA_TABLE_FLAGS`.
    public var flags: UInt32?
    /// The table's family (dumped tables).
    public var family: UInt8?

    public init(name: String, flags: UInt32? = nil, family: UInt8? = nil) {
        self.name = name; self.flags = flags; self.family = family
    }
}

/// A chain (`NFT_MSG_NEWCHAIN`, `NFT_MSG_DELCHAIN`, a dumped chain); a base chain has a hook.
public struct NftChain: Hashable, Sendable {
    public var table: String
    public var name: String
    /// ``NetfilterHook`` number.
    public var hook: UInt32?
    public var priority: Int32?
    /// `filter`, `nat`, `route`.
    public var type: String?
    /// ``VerdictCode/accept`` or ``VerdictCode/drop``.
    public var policy: UInt32?

    public init(table: String, name: String, hook: UInt32? = nil, priority: Int32? = nil,
                type: String? = nil, policy: UInt32? = nil) {
        self.table = table; self.name = name; self.hook = hook; self.priority = priority
        self.type = type; self.policy = policy
    }
}

/// A rule (`NFT_MSG_NEWRULE`; without expressions and family, `NFT_MSG_DELRULE` flushes the chain).
public struct NftRule: Hashable, Sendable {
    public var family: UInt8?
    public var table: String
    public var chain: String
    public var expressions: [NftExpression]
    /// `NFTA_RULE_USERDATA` (nft keeps rule comments there).
    public var userData: [UInt8]?

    public init(family: UInt8? = nil, table: String, chain: String, expressions: [NftExpression] = [],
                userData: [UInt8]? = nil) {
        self.family = family; self.table = table; self.chain = chain
        self.expressions = expressions; self.userData = userData
    }
}

/// A set or map declaration (`NFT_MSG_NEWSET`, `NFT_MSG_DELSET`, a dumped set), and the
/// set an element message names (`NFT_MSG_NEWSETELEM` with ``elements``).
public struct NftSet: Hashable, Sendable {
    public var family: UInt8?
    public var table: String
    public var name: String
    /// ``NftSetFlag`` bits.
    public var flags: UInt32?
    public var keyType: UInt32?
    public var keyLength: UInt32?
    public var dataType: UInt32?
    public var dataLength: UInt32?
    /// `NFTA_SET_DESC_SIZE`: the most elements.
    public var size: UInt32?
    /// `NFTA_SET_ID`: names the set within the transaction that creates it.
    public var id: UInt32?
    /// Default element timeout in milliseconds (`timeout` sets).
    public var timeout: UInt64?
    /// Garbage collection interval in milliseconds.
    public var gcInterval: UInt32?
    /// nft's description of the declaration (`NFTA_SET_USERDATA`).
    public var userData: [UInt8]?
    /// Expressions every element gets (`counter` on a set declared with one).
    public var expressions: [NftExpression]
    /// Elements, for element messages and element dumps.
    public var elements: [NftSetElement]
    /// `NFTA_SET_DESC_CONCAT`: the length in bytes of each field of a concatenated
    /// interval set (the kernel's `pipapo` sets match each field against its own range).
    public var fieldLengths: [UInt8]? = nil

    public init(family: UInt8? = nil, table: String, name: String, flags: UInt32? = nil,
                keyType: UInt32? = nil, keyLength: UInt32? = nil, dataType: UInt32? = nil, dataLength: UInt32? = nil,
                size: UInt32? = nil, id: UInt32? = nil, timeout: UInt64? = nil, gcInterval: UInt32? = nil,
                userData: [UInt8]? = nil, expressions: [NftExpression] = [], elements: [NftSetElement] = []) {
        self.family = family; self.table = table; self.name = name; self.flags = flags
        self.keyType = keyType; self.keyLength = keyLength; self.dataType = dataType; self.dataLength = dataLength
        self.size = size; self.id = id; self.timeout = timeout; self.gcInterval = gcInterval
        self.userData = userData; self.expressions = expressions; self.elements = elements
    }
}

/// One element of a set or map.
public struct NftSetElement: Hashable, Sendable {
    public var key: [UInt8]
    /// A verdict map's verdict code, and the chain of a jump or goto.
    public var verdict: Int32?
    public var chain: String?
    /// A data map's value.
    public var data: [UInt8]?
    /// Timeout in milliseconds (elements of `timeout` sets).
    public var timeout: UInt64?
    /// Milliseconds left before the element expires (dumps only).
    public var expiration: UInt64?
    /// Per-element expressions (a `counter` with what it counted).
    public var expressions: [NftExpression]
    /// `NFTA_SET_ELEM_KEY_END`: the last key of an interval set's range.
    public var keyEnd: [UInt8]? = nil
    /// `NFTA_SET_ELEM_USERDATA` (nft keeps element comments there; at most 256 bytes).
    public var userData: [UInt8]? = nil

    public init(key: [UInt8], verdict: Int32? = nil, chain: String? = nil, data: [UInt8]? = nil,
                timeout: UInt64? = nil, expiration: UInt64? = nil, expressions: [NftExpression] = []) {
        self.key = key; self.verdict = verdict; self.chain = chain; self.data = data
        self.timeout = timeout; self.expiration = expiration; self.expressions = expressions
    }
}
