import CNetfilter

/// A kernel number of one kind, with names for the values nftproxy uses.
public protocol WireNumber: RawRepresentable, Hashable, Sendable, CustomStringConvertible where RawValue == UInt32 {
    init(rawValue: UInt32)
}

extension WireNumber {
    public var description: String { "\(rawValue)" }
}

/// An nf_tables register: `NFT_REG_VERDICT`, or a data register.
public struct NftRegister: WireNumber {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `NFT_REG_VERDICT`.
    public static let verdict = NftRegister(rawValue: UInt32(NFT_REG_VERDICT.rawValue))

    /// nft's register for a 32-bit slot counted from `NFT_REG_1`: a slot on a 16-byte
    /// boundary is named by its 128-bit register (`NFT_REG_1`...), others by their
    /// 32-bit one (`NFT_REG32_00 + slot`).
    public static func slot(_ slot: Int) -> NftRegister {
        NftRegister(rawValue: slot % 4 == 0
            ? UInt32(NFT_REG_1.rawValue) + UInt32(slot / 4)
            : UInt32(NFT_REG32_00.rawValue) + UInt32(slot))
    }

    /// The 32-bit slot (counted from `NFT_REG_1`) this register names: the inverse of ``slot(_:)``.
    public var slotIndex: Int {
        let reg32 = UInt32(NFT_REG32_00.rawValue), reg1 = UInt32(NFT_REG_1.rawValue)
        return rawValue >= reg32 ? Int(rawValue - reg32) : Int(rawValue - reg1) * 4
    }

    /// Slots a value of `size` bytes occupies.
    public static func slots(forBytes size: Int) -> Int { (size + 3) / 4 }
}

/// Where a `payload` expression reads (`enum nft_payload_bases`).
public struct NftPayloadBase: WireNumber {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let link = NftPayloadBase(rawValue: UInt32(NFT_PAYLOAD_LL_HEADER.rawValue))
    public static let network = NftPayloadBase(rawValue: UInt32(NFT_PAYLOAD_NETWORK_HEADER.rawValue))
    public static let transport = NftPayloadBase(rawValue: UInt32(NFT_PAYLOAD_TRANSPORT_HEADER.rawValue))
}

/// What a `meta` expression reads or writes (`enum nft_meta_keys`).
public struct NftMetaKey: WireNumber {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let mark = NftMetaKey(rawValue: UInt32(NFT_META_MARK.rawValue))
    public static let l4proto = NftMetaKey(rawValue: UInt32(NFT_META_L4PROTO.rawValue))
}

/// What a `ct` expression reads (`enum nft_ct_keys`).
public struct NftCtKey: WireNumber {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let state = NftCtKey(rawValue: UInt32(NFT_CT_STATE.rawValue))
    public static let status = NftCtKey(rawValue: UInt32(NFT_CT_STATUS.rawValue))
    /// The layer-4 source and destination ports of a direction's tuple (`ct original proto-dst`).
    public static let protoSource = NftCtKey(rawValue: UInt32(NFT_CT_PROTO_SRC.rawValue))
    public static let protoDestination = NftCtKey(rawValue: UInt32(NFT_CT_PROTO_DST.rawValue))
    /// The addresses of a direction's tuple (`ct original ip daddr`, `ct reply ip6 saddr`).
    public static let ipv4Source = NftCtKey(rawValue: UInt32(NFT_CT_SRC_IP.rawValue))
    public static let ipv4Destination = NftCtKey(rawValue: UInt32(NFT_CT_DST_IP.rawValue))
    public static let ipv6Source = NftCtKey(rawValue: UInt32(NFT_CT_SRC_IP6.rawValue))
    public static let ipv6Destination = NftCtKey(rawValue: UInt32(NFT_CT_DST_IP6.rawValue))
}

/// A `cmp` operator (`enum nft_cmp_ops`).
public struct NftCompareOperator: WireNumber {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let equal = NftCompareOperator(rawValue: UInt32(NFT_CMP_EQ.rawValue))
    public static let notEqual = NftCompareOperator(rawValue: UInt32(NFT_CMP_NEQ.rawValue))
}

/// A `numgen` kind (`enum nft_ng_types`).
public struct NftNumgenType: WireNumber {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let incremental = NftNumgenType(rawValue: UInt32(NFT_NG_INCREMENTAL.rawValue))
    public static let random = NftNumgenType(rawValue: UInt32(NFT_NG_RANDOM.rawValue))
}

/// What a `fib` expression yields (`enum nft_fib_result`).
public struct NftFibResult: WireNumber {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let addressType = NftFibResult(rawValue: UInt32(NFT_FIB_RESULT_ADDRTYPE.rawValue))
}

/// Flags of a `fib` expression (`enum nft_fib_flags`): which address it looks up.
public struct NftFibFlags: WireNumber {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let sourceAddress = NftFibFlags(rawValue: UInt32(NFTA_FIB_F_SADDR.rawValue))
    public static let destinationAddress = NftFibFlags(rawValue: UInt32(NFTA_FIB_F_DADDR.rawValue))
}

/// A `nat` kind (`enum nft_nat_types`).
public struct NftNatType: WireNumber {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let source = NftNatType(rawValue: UInt32(NFT_NAT_SNAT.rawValue))
    public static let destination = NftNatType(rawValue: UInt32(NFT_NAT_DNAT.rawValue))
}

/// Flags of `nat` and `masq` (`NF_NAT_RANGE_*`).
public enum NftNatRangeFlag {
    /// `NF_NAT_RANGE_PROTO_RANDOM_FULLY`: `fully-random`.
    public static let randomFully = UInt32(NF_NAT_RANGE_PROTO_RANDOM_FULLY)
}

/// How `reject` answers (`enum nft_reject_types`).
public struct NftRejectType: WireNumber {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let icmpUnreachable = NftRejectType(rawValue: UInt32(NFT_REJECT_ICMP_UNREACH.rawValue))
    public static let tcpReset = NftRejectType(rawValue: UInt32(NFT_REJECT_TCP_RST.rawValue))
}

/// ICMP codes `reject` sends.
public enum NftRejectCode {
    /// `ICMP_PORT_UNREACH`.
    public static let icmpPortUnreachable = UInt8(ICMP_PORT_UNREACH)
    /// `ICMPV6_PORT_UNREACH`.
    public static let icmpv6PortUnreachable = UInt8(ICMPV6_PORT_UNREACH)
}

/// What a `dynset` expression does to its set (`enum nft_dynset_ops`).
public struct NftDynsetOperation: WireNumber {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `add @set { … }`: adds the element if it is not there.
    public static let add = NftDynsetOperation(rawValue: UInt32(NFT_DYNSET_OP_ADD.rawValue))
    /// `update @set { … }`: adds the element, or refreshes its timeout.
    public static let update = NftDynsetOperation(rawValue: UInt32(NFT_DYNSET_OP_UPDATE.rawValue))
    /// `delete @set { … }`.
    public static let delete = NftDynsetOperation(rawValue: UInt32(NFT_DYNSET_OP_DELETE.rawValue))
}
