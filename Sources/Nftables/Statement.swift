import ServiceModel

/// A source of a value in a rule: what nft loads into a register.
public enum Selector: Hashable, Sendable {
    public enum AddressField: Hashable, Sendable { case source, destination }
    /// Which tuple of a connection a `ct` selector reads: the one of its first packet's
    /// direction (`original`) or the one replies carry (`reply`, after NAT: the endpoint).
    public enum ConntrackDirection: UInt8, Hashable, Sendable { case original = 0, reply = 1 }

    /// `ip saddr`, `ip6 daddr`, ...
    case address(AddressField, TableFamily)
    /// `th dport`: the destination port of TCP, UDP or SCTP.
    case transportDestinationPort
    /// `meta l4proto`
    case l4proto
    /// `meta mark`
    case mark
    /// `numgen random mod N`
    case randomNumber(modulus: UInt32)
    /// `fib daddr type`
    case fibDestinationType
    /// `fib saddr type`: the route type of the source address (`local` for the node's own).
    case fibSourceType
    /// `ct state`
    case ctState
    /// `ct status`
    case ctStatus
    /// `ct original ip daddr`, `ct reply ip6 saddr`, ...: an address of a conntrack tuple.
    /// The same on every packet of a connection, whichever way it travels.
    case ctAddress(AddressField, ConntrackDirection, TableFamily)
    /// `ct original proto-dst`, `ct reply proto-src`: a port of a conntrack tuple. nft needs
    /// the protocol known (`meta l4proto tcp` earlier in the rule) to type it as a port.
    case ctPort(AddressField, ConntrackDirection)

    /// The datatype of the values this selector produces.
    public var dataType: DataType {
        switch self {
        case .address(_, let family): return family.addressType
        case .transportDestinationPort: return .inetService
        case .l4proto: return .inetProto
        case .mark: return .mark
        case .randomNumber: return .integer32
        case .fibDestinationType, .fibSourceType: return .fibAddressType
        case .ctState: return .ctState
        case .ctStatus: return .ctStatus
        case .ctAddress(_, _, let family): return family.addressType
        case .ctPort: return .inetService
        }
    }

    /// The nft text of the selector.
    public var nftText: String {
        switch self {
        case .address(let field, let family):
            return "\(family.rawValue) \(field == .source ? "saddr" : "daddr")"
        case .transportDestinationPort: return "th dport"
        case .l4proto: return "meta l4proto"
        case .mark: return "meta mark"
        case .randomNumber(let modulus): return "numgen random mod \(modulus)"
        case .fibDestinationType: return "fib daddr type"
        case .fibSourceType: return "fib saddr type"
        case .ctState: return "ct state"
        case .ctStatus: return "ct status"
        case .ctAddress(let field, let direction, let family):
            return "ct \(direction.name) \(family.rawValue) \(field == .source ? "saddr" : "daddr")"
        case .ctPort(let field, let direction):
            return "ct \(direction.name) \(field == .source ? "proto-src" : "proto-dst")"
        }
    }
}

extension Selector.ConntrackDirection {
    /// `original` or `reply`, as nft writes it.
    public var name: String { self == .original ? "original" : "reply" }
}

/// How a rejected packet is answered.
public enum RejectKind: Hashable, Sendable {
    /// `reject with tcp reset` (the rule must match TCP first).
    case tcpReset
    /// `reject`: ICMP / ICMPv6 port unreachable.
    case portUnreachable
}

/// One statement of a rule, typed; rendered by `ScriptRenderer` and encoded by the netlink encoder.
public enum Statement: Hashable, Sendable {
    /// `<selector> <value>` or `<selector> != <value>`.
    case compare(Selector, negated: Bool, Value)
    /// `<address selector> <network>/<length>` or `!=` (length 1 ... address bits - 1).
    case prefix(Selector, network: IPAddress, length: Int, negated: Bool)
    /// A flag test: `ct state new`, `ct status dnat`, `meta mark & 0x4000 == 0x0` (isSet false).
    case bitTest(Selector, mask: UInt32, isSet: Bool)
    /// `a . b @set`
    case lookup([Selector], set: String)
    /// `a . b vmap @map`
    case verdictMap([Selector], map: String)
    /// `meta mark set meta mark | bits`
    case setMarkBits(UInt32)
    /// `meta mark set meta mark ^ bits`
    case toggleMarkBits(UInt32)
    /// `jump x`, `goto x`, `return`, `accept`, `drop`
    case verdict(Verdict)
    /// `dnat ip to a . b map @map`: the map yields address . port.
    case dnatMap([Selector], map: String, family: TableFamily)
    /// `masquerade` (optionally `fully-random`).
    case masquerade(fullyRandom: Bool)
    /// `reject` / `reject with tcp reset`
    case reject(RejectKind)
    /// `counter`
    case counter
    /// `update @set { a . b }` or `update @set { a . b timeout T }` (milliseconds): adds the
    /// element made of the selectors' values to a dynamic set, or refreshes its timeout.
    case updateSet([Selector], set: String, timeout: UInt64?)
    /// `update @map { a . b timeout T : c . d }`: adds the element with the data made of the
    /// `data` selectors' values to a dynamic map, or refreshes its timeout (an element that
    /// is there keeps its data).
    case updateMap([Selector], data: [Selector], map: String, timeout: UInt64?)
    /// `delete @map { a . b : c . d }`: removes the element keyed by the selectors' values
    /// from a dynamic map (the kernel wants the data of a map's element, and ignores it).
    case deleteFromMap([Selector], data: [Selector], map: String)
}
