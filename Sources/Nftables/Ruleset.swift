import Netlink

/// An nftables address family nftproxy programs (one table per family).
public enum TableFamily: String, Hashable, Sendable, CaseIterable {
    case ip
    case ip6

    /// NFPROTO_IPV4 / NFPROTO_IPV6.
    public var protocolFamily: UInt8 { self == .ip ? NetfilterFamily.ipv4 : NetfilterFamily.ipv6 }
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
    public enum Hook: String, Hashable, Sendable, CaseIterable {
        case prerouting, input, forward, output, postrouting
        /// NF_INET_* hook number.
        public var number: UInt32 {
            switch self {
            case .prerouting: return NetfilterHook.prerouting
            case .input: return NetfilterHook.input
            case .forward: return NetfilterHook.forward
            case .output: return NetfilterHook.output
            case .postrouting: return NetfilterHook.postrouting
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

/// Flags of a set declaration beyond what its key and data imply.
public struct SetFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `flags timeout`: elements can expire (implied by a set timeout).
    public static let timeout = SetFlags(rawValue: 1 << 0)
    /// `flags dynamic`: rules add and update elements from the packet path (`update @set`).
    public static let dynamic = SetFlags(rawValue: 1 << 1)
    /// `flags interval`: elements are ranges (``SetElement/keyEnd``); with a concatenated
    /// key, each field is matched against its own range.
    public static let interval = SetFlags(rawValue: 1 << 2)

    /// nft's names, in the order nft lists them.
    static let names: [(SetFlags, String)] = [(.interval, "interval"), (.dynamic, "dynamic"), (.timeout, "timeout")]
}

/// A named set (no `data`) or map (with `data`), with its elements.
public struct NamedSet: Hashable, Sendable {
    public var name: String
    public var key: SetFields
    public var data: SetData?
    /// `size N`: the most elements the set can hold. With a size the kernel uses a hash
    /// table of fixed size rather than one that grows while elements are added, which makes
    /// large loads much cheaper; but adding beyond it fails (ENFILE), and a set's size cannot
    /// change: a set that outgrows it must be created anew (`TableDiff` does). A dynamic set
    /// should have one: without it the kernel gives it 65535 and reads back differently.
    public var size: Int?
    /// `flags …`; ``SetFlags/timeout`` is added when ``timeout`` is set.
    public var flags: SetFlags
    /// `timeout T`: the default timeout of elements, in milliseconds.
    public var timeout: UInt64?
    /// `counter`: every element counts the packets and bytes that matched it.
    public var counter: Bool
    public var elements: [SetElement]

    public init(name: String, key: SetFields, data: SetData? = nil, size: Int? = nil, flags: SetFlags = [],
                timeout: UInt64? = nil, counter: Bool = false, elements: [SetElement] = []) {
        self.name = name; self.key = key; self.data = data; self.size = size
        self.flags = timeout == nil ? flags : flags.union(.timeout)
        self.timeout = timeout; self.counter = counter; self.elements = elements
    }

    public var isMap: Bool { data != nil }

    /// The same set declared with `flags interval`.
    public var withInterval: NamedSet {
        var copy = self
        copy.flags.insert(.interval)
        return copy
    }
}

/// One element of a set or map.
///
/// Equality and hashing cover what nftproxy writes (key, data, timeout, comment), not ``observed``.
/// The rarely used timeout, comment and observed state live in one shared box, so that an element
/// without them (nearly all: sets hold hundreds of thousands) stays as small as its key and data.
public struct SetElement: Hashable, Sendable {
    public var key: [Value]
    public var data: ElementData?
    /// Timeout and observed state, when either is set.
    private var extras: Extras?

    /// In an interval set: the last key of the range that starts at `key` (each field from
    /// its value in `key` to its value here); nil in other sets.
    public var keyEnd: [Value]?

    public init(key: [Value], data: ElementData? = nil, timeout: UInt64? = nil, keyEnd: [Value]? = nil) {
        self.key = key; self.data = data; self.keyEnd = keyEnd
        self.extras = timeout.map { Extras(timeout: $0, observed: nil, comment: nil) }
    }

    /// The same element with `comment "text"`.
    public func commented(_ text: String?) -> SetElement {
        var copy = self
        copy.comment = text
        return copy
    }

    /// Whether `values` lies in this element's range (or equals its key, outside interval sets).
    public func contains(_ values: [Value]) -> Bool {
        guard let keyEnd else { return values == key }
        guard values.count == key.count, keyEnd.count == key.count else { return false }
        return values.indices.allSatisfy { key[$0] <= values[$0] && values[$0] <= keyEnd[$0] }
    }

    /// `timeout T` of this element, in milliseconds, when it differs from the set's.
    public var timeout: UInt64? {
        get { extras?.timeout }
        set { extras = Extras.make(timeout: newValue, observed: observed, comment: comment) }
    }

    /// What the kernel reported about the element when it was read back.
    public var observed: ObservedElement? {
        get { extras?.observed }
        set { extras = Extras.make(timeout: timeout, observed: newValue, comment: comment) }
    }

    /// `comment "…"`: text the kernel keeps with the element (its userdata, at most
    /// ``SetElement/maximumCommentBytes``); part of what nftproxy writes, so part of equality.
    public var comment: String? {
        get { extras?.comment }
        set { extras = Extras.make(timeout: timeout, observed: observed, comment: newValue) }
    }

    /// The longest comment nft writes (its userdata limit is 256 bytes: a 2-byte header and
    /// a terminating zero around the text).
    public static let maximumCommentBytes = 253

    public static func == (lhs: SetElement, rhs: SetElement) -> Bool {
        lhs.key == rhs.key && lhs.data == rhs.data && lhs.keyEnd == rhs.keyEnd
            && ((lhs.extras == nil && rhs.extras == nil) || (lhs.timeout == rhs.timeout && lhs.comment == rhs.comment))
    }

    /// Key and data only: elements that differ in timeout alone share a hash, which
    /// equality still tells apart.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(key)
        hasher.combine(data)
    }

    /// Immutable, so shared between copies of an element.
    private final class Extras: Sendable {
        let timeout: UInt64?
        let observed: ObservedElement?
        let comment: String?

        init(timeout: UInt64?, observed: ObservedElement?, comment: String?) {
            self.timeout = timeout; self.observed = observed; self.comment = comment
        }

        static func make(timeout: UInt64?, observed: ObservedElement?, comment: String?) -> Extras? {
            timeout == nil && observed == nil && comment == nil
                ? nil : Extras(timeout: timeout, observed: observed, comment: comment)
        }
    }
}

/// The kernel's state of a set element: when it expires and what it counted.
public struct ObservedElement: Hashable, Sendable {
    /// Milliseconds until the element expires (elements of timeout sets).
    public var expiresIn: UInt64?
    /// Packets and bytes counted (elements of sets declared with `counter`).
    public var packets: UInt64?
    public var bytes: UInt64?

    public init(expiresIn: UInt64? = nil, packets: UInt64? = nil, bytes: UInt64? = nil) {
        self.expiresIn = expiresIn; self.packets = packets; self.bytes = bytes
    }
}

/// The value side of a map element.
public enum ElementData: Hashable, Sendable {
    case verdict(Verdict)
    case values([Value])
}
