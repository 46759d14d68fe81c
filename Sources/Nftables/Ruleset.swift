/// An nftables address family nftproxy programs (one table per family).
public enum TableFamily: String, Hashable, Sendable, CaseIterable {
    case ip
    case ip6

    /// NFPROTO_IPV4 / NFPROTO_IPV6.
    public var protocolFamily: UInt8 { self == .ip ? 2 : 10 }
    /// Length of an address of this family in bytes.
    public var addressLength: Int { self == .ip ? 4 : 16 }
    /// The address datatype of this family.
    public var addressType: DataType { self == .ip ? .ipv4Address : .ipv6Address }
}

/// A complete desired ruleset: the tables nftproxy owns, as plain values.
public struct Ruleset: Hashable, Sendable {
    public var tables: [Table]
    public init(tables: [Table]) { self.tables = tables }

    public func table(_ family: TableFamily, _ name: String) -> Table? {
        tables.first { $0.family == family && $0.name == name }
    }
}

/// One nftables table with its sets, maps and chains.
public struct Table: Hashable, Sendable {
    public var family: TableFamily
    public var name: String
    /// Sets and maps, in declaration order.
    public var sets: [NamedSet]
    /// Chains, in declaration order.
    public var chains: [Chain]

    public init(family: TableFamily, name: String, sets: [NamedSet] = [], chains: [Chain] = []) {
        self.family = family; self.name = name; self.sets = sets; self.chains = chains
    }

    /// "ip nftproxy"
    public var qualifiedName: String { "\(family.rawValue) \(name)" }
}

/// The hook of a base chain.
public struct BaseChain: Hashable, Sendable {
    public enum ChainType: String, Hashable, Sendable { case filter, nat }
    public enum Hook: String, Hashable, Sendable {
        case prerouting, input, forward, output, postrouting
        /// NF_INET_* hook number.
        public var number: UInt32 {
            switch self {
            case .prerouting: return 0
            case .input: return 1
            case .forward: return 2
            case .output: return 3
            case .postrouting: return 4
            }
        }
    }
    public var type: ChainType
    public var hook: Hook
    public var priority: Int32

    public init(type: ChainType, hook: Hook, priority: Int32) {
        self.type = type; self.hook = hook; self.priority = priority
    }
}

/// A chain: a base chain when `base` is set (policy accept), otherwise a regular chain.
public struct Chain: Hashable, Sendable {
    public var name: String
    public var base: BaseChain?
    public var rules: [Rule]

    public init(name: String, base: BaseChain? = nil, rules: [Rule] = []) {
        self.name = name; self.base = base; self.rules = rules
    }
}

/// A rule: statements evaluated left to right, as in nft syntax.
public struct Rule: Hashable, Sendable {
    public var statements: [Statement]
    public init(_ statements: [Statement]) { self.statements = statements }
}

/// What a named set or map is keyed by, or maps to.
public enum SetFields: Hashable, Sendable {
    /// `type a . b`: declared by datatypes.
    case types([DataType])
    /// `typeof x . y`: declared by the expressions that produce the values (kept in set userdata).
    case typeOf([Selector])

    /// Datatypes of the fields, in order.
    public var dataTypes: [DataType] {
        switch self {
        case .types(let types): return types
        case .typeOf(let selectors): return selectors.map(\.dataType)
        }
    }
}

/// What the elements of a map map to.
public enum SetData: Hashable, Sendable {
    case verdict
    case fields(SetFields)
}

/// A named set (no `data`) or map (with `data`), with its elements.
public struct NamedSet: Hashable, Sendable {
    public var name: String
    public var key: SetFields
    public var data: SetData?
    /// `size N`: the most elements the set can hold. With a size the kernel uses a hash
    /// table of fixed size rather than one that grows while elements are added, which makes
    /// large loads much cheaper; but adding beyond it fails (ENFILE), and a set's size cannot
    /// change: a set that outgrows it must be created anew (`TableDiff` does).
    public var size: Int?
    public var elements: [SetElement]
    /// `flags interval`: elements are ranges (`keyEnd`); a concatenated key makes the
    /// kernel match each field against its own range.
    public var interval: Bool

    public init(name: String, key: SetFields, data: SetData? = nil, size: Int? = nil, elements: [SetElement] = [],
                interval: Bool = false) {
        self.name = name; self.key = key; self.data = data; self.size = size; self.elements = elements
        self.interval = interval
    }

    public var isMap: Bool { data != nil }

    /// The same set declared with `flags interval`.
    public var withInterval: NamedSet {
        var copy = self
        copy.interval = true
        return copy
    }
}

/// One element of a set or map.
public struct SetElement: Hashable, Sendable {
    public var key: [Value]
    public var data: ElementData?
    /// In an interval set: the last key of the range that starts at `key` (each field from
    /// its value in `key` to its value here); nil in other sets.
    public var keyEnd: [Value]?

    public init(key: [Value], data: ElementData? = nil, keyEnd: [Value]? = nil) {
        self.key = key; self.data = data; self.keyEnd = keyEnd
    }

    /// Whether `values` lies in this element's range (or equals its key, outside interval sets).
    public func contains(_ values: [Value]) -> Bool {
        guard let keyEnd else { return values == key }
        guard values.count == key.count, keyEnd.count == key.count else { return false }
        return values.indices.allSatisfy { key[$0] <= values[$0] && values[$0] <= keyEnd[$0] }
    }
}

/// The value side of a map element.
public enum ElementData: Hashable, Sendable {
    case verdict(Verdict)
    case values([Value])
}
