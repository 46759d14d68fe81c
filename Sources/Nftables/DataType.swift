import Netlink
import ServiceModel

/// nftables datatypes nftproxy uses in keys, data and comparisons.
public enum DataType: Hashable, Sendable, CaseIterable {
    case ipv4Address
    case ipv6Address
    case inetProto
    case inetService
    case mark
    /// An unsigned host-order integer of 32 bits (numgen output).
    case integer32
    case ctState
    case ctStatus
    case fibAddressType

    /// nft's datatype id (`enum datatypes`, `TYPE_*` in nftables' datatype.h: a number of
    /// nft, not of the kernel, which only stores it), combined 6 bits per field for
    /// concatenations. The one table of these ids: set userdata and the read-back use it.
    public var typeID: UInt32 {
        switch self {
        case .integer32: return 4
        case .ipv4Address: return 7
        case .ipv6Address: return 8
        case .inetProto: return 12
        case .inetService: return 13
        case .mark: return 19
        case .ctState: return 25
        case .ctStatus: return 27
        case .fibAddressType: return 43
        }
    }

    /// The datatype whose id is `typeID`, if nftproxy uses it.
    public init?(typeID: UInt32) {
        guard let type = Self.allCases.first(where: { $0.typeID == typeID }) else { return nil }
        self = type
    }

    /// Size of a value in bytes.
    public var size: Int {
        switch self {
        case .ipv4Address: return 4
        case .ipv6Address: return 16
        case .inetProto: return 1
        case .inetService: return 2
        case .mark, .integer32, .ctState, .ctStatus, .fibAddressType: return 4
        }
    }

    /// nft type name as used after `type` in a set declaration.
    public var nftName: String {
        switch self {
        case .ipv4Address: return "ipv4_addr"
        case .ipv6Address: return "ipv6_addr"
        case .inetProto: return "inet_proto"
        case .inetService: return "inet_service"
        case .mark: return "mark"
        case .integer32: return "integer"
        case .ctState: return "ct_state"
        case .ctStatus: return "ct_status"
        case .fibAddressType: return "fib_addrtype"
        }
    }

    /// True where values are in network byte order.
    public var isBigEndian: Bool {
        switch self {
        case .ipv4Address, .ipv6Address, .inetService: return true
        default: return false
        }
    }
}

/// nft's identifier for a concatenation of datatypes (and for a single one: its own id).
public func concatenatedTypeID(_ types: [DataType]) -> UInt32 {
    types.reduce(0) { ($0 << 6) | $1.typeID }
}

/// A constant: a field of a set element or the right-hand side of a comparison.
public enum Value: Hashable, Sendable, Comparable {
    case address(IPAddress)
    case proto(UInt8)
    case port(UInt16)
    case integer(UInt32)

    /// The bytes the kernel holds for this value (network order for address and port, host order for integers).
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        appendBytes(to: &out)
        return out
    }

    /// Appends the value's bytes to `buffer`.
    public func appendBytes(to buffer: inout [UInt8]) {
        switch self {
        case .address(let address): address.appendBytes(to: &buffer)
        case .proto(let value): buffer.append(value)
        case .port(let port): buffer.append(UInt8(port >> 8)); buffer.append(UInt8(port & 0xff))
        case .integer(let value): withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) }
        }
    }

    /// Size of the value in bytes.
    var size: Int {
        switch self {
        case .address(let address): return address.family.addressLength
        case .proto: return 1
        case .port: return 2
        case .integer: return 4
        }
    }

    public static func < (lhs: Value, rhs: Value) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }
}

/// Where a packet goes next.
public enum Verdict: Hashable, Sendable {
    case accept
    case drop
    case `return`
    case jump(String)
    case goto(String)

    /// NF_ACCEPT / NF_DROP / NFT_RETURN / NFT_JUMP / NFT_GOTO.
    public var code: Int32 {
        switch self {
        case .drop: return VerdictCode.drop
        case .accept: return VerdictCode.accept
        case .return: return VerdictCode.return
        case .jump: return VerdictCode.jump
        case .goto: return VerdictCode.goto
        }
    }

    /// The verdict with kernel code `code` (and `chain` for jump and goto), if nftproxy writes it.
    public init?(code: Int32, chain: String?) {
        switch (code, chain) {
        case (VerdictCode.accept, nil): self = .accept
        case (VerdictCode.drop, nil): self = .drop
        case (VerdictCode.return, nil): self = .return
        case (VerdictCode.jump, let chain?): self = .jump(chain)
        case (VerdictCode.goto, let chain?): self = .goto(chain)
        default: return nil
        }
    }

    public var chain: String? {
        switch self {
        case .jump(let chain), .goto(let chain): return chain
        default: return nil
        }
    }
}
