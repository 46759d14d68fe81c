import CNetfilter

#if canImport(Glibc)
import Glibc
#endif

// Typed names for the kernel numbers nftproxy puts on the wire, each taken from the
// kernel or libc headers here, once. Modules above the wire layer use these names
// (the Nftables IR wraps the ones a ruleset mentions in its own types).

/// `nfgen_family` values: the protocol family of an nfnetlink message (`NFPROTO_*`,
/// equal to the `AF_*` of the same family).
public enum NetfilterFamily {
    /// `NFPROTO_UNSPEC`: all families (dumps).
    public static let unspecified = UInt8(NFPROTO_UNSPEC)
    /// `NFPROTO_IPV4`.
    public static let ipv4 = UInt8(NFPROTO_IPV4)
    /// `NFPROTO_IPV6`.
    public static let ipv6 = UInt8(NFPROTO_IPV6)
    /// `NFPROTO_INET`.
    public static let inet = UInt8(NFPROTO_INET)
}

/// `NLM_F_*` request flags a caller may add to a message.
public enum NetlinkFlags {
    /// `NLM_F_CREATE`: create the object if it does not exist.
    public static let create = UInt16(NLM_F_CREATE)
    /// `NLM_F_EXCL`: fail if the object exists.
    public static let exclusive = UInt16(NLM_F_EXCL)
    /// `NLM_F_APPEND`: add at the end (rules).
    public static let append = UInt16(NLM_F_APPEND)
    /// `NLM_F_REPLACE`: replace the existing object.
    public static let replace = UInt16(NLM_F_REPLACE)
}

/// nf_tables message types (`NFT_MSG_*`), the low byte of an nf_tables message's type.
public enum NftMessage {
    public static let newTable = UInt16(NFT_MSG_NEWTABLE.rawValue)
    public static let getTable = UInt16(NFT_MSG_GETTABLE.rawValue)
    public static let deleteTable = UInt16(NFT_MSG_DELTABLE.rawValue)
    public static let newChain = UInt16(NFT_MSG_NEWCHAIN.rawValue)
    public static let getChain = UInt16(NFT_MSG_GETCHAIN.rawValue)
    public static let deleteChain = UInt16(NFT_MSG_DELCHAIN.rawValue)
    public static let newRule = UInt16(NFT_MSG_NEWRULE.rawValue)
    public static let getRule = UInt16(NFT_MSG_GETRULE.rawValue)
    /// `NFT_MSG_DELRULE`: deletes one rule, or (without a handle) flushes a chain.
    public static let deleteRule = UInt16(NFT_MSG_DELRULE.rawValue)
    public static let newSet = UInt16(NFT_MSG_NEWSET.rawValue)
    public static let getSet = UInt16(NFT_MSG_GETSET.rawValue)
    public static let deleteSet = UInt16(NFT_MSG_DELSET.rawValue)
    public static let newElements = UInt16(NFT_MSG_NEWSETELEM.rawValue)
    public static let getElements = UInt16(NFT_MSG_GETSETELEM.rawValue)
    public static let deleteElements = UInt16(NFT_MSG_DELSETELEM.rawValue)
    /// `NFT_MSG_DESTROYSETELEM` (Linux 6.3 and later; the C headers here predate it): deletes
    /// elements, and takes an element that is not there as done instead of refusing the batch.
    public static let destroyElements: UInt16 = 30
    public static let getGeneration = UInt16(NFT_MSG_GETGEN.rawValue)
}

/// Verdict codes of nf_tables (`NF_ACCEPT`, `NF_DROP` and `enum nft_verdicts`).
public enum VerdictCode {
    public static let drop = Int32(NF_DROP)
    public static let accept = Int32(NF_ACCEPT)
    public static let `continue` = Int32(NFT_CONTINUE.rawValue)
    public static let `break` = Int32(NFT_BREAK.rawValue)
    public static let jump = Int32(NFT_JUMP.rawValue)
    public static let goto = Int32(NFT_GOTO.rawValue)
    public static let `return` = Int32(NFT_RETURN.rawValue)
}

/// Bits of `ct state` (`NF_CT_STATE_*_BIT`: 1 << (`enum ip_conntrack_info` + 1), and
/// the invalid and untracked bits).
public enum ConntrackStateBit {
    public static let invalid = UInt32(1) << 0
    public static let established = UInt32(1) << (UInt32(IP_CT_ESTABLISHED.rawValue) + 1)
    public static let related = UInt32(1) << (UInt32(IP_CT_RELATED.rawValue) + 1)
    public static let new = UInt32(1) << (UInt32(IP_CT_NEW.rawValue) + 1)
    public static let untracked = UInt32(1) << 6
}

/// Bits of `ct status` and of a ctnetlink entry's `CTA_STATUS` (`enum ip_conntrack_status`).
public enum ConntrackStatusBit {
    public static let expected = UInt32(IPS_EXPECTED.rawValue)
    public static let seenReply = UInt32(IPS_SEEN_REPLY.rawValue)
    public static let assured = UInt32(IPS_ASSURED.rawValue)
    public static let confirmed = UInt32(IPS_CONFIRMED.rawValue)
    public static let sourceNAT = UInt32(IPS_SRC_NAT.rawValue)
    public static let destinationNAT = UInt32(IPS_DST_NAT.rawValue)
    public static let dying = UInt32(IPS_DYING.rawValue)
    public static let offload = UInt32(IPS_OFFLOAD.rawValue)
}

/// Route types `fib ... type` yields (`RTN_*` of `<linux/rtnetlink.h>`).
public enum FibAddressTypeNumber {
    public static let unicast = UInt32(RTN_UNICAST)
    public static let local = UInt32(RTN_LOCAL)
    public static let broadcast = UInt32(RTN_BROADCAST)
    public static let multicast = UInt32(RTN_MULTICAST)
}

/// Netfilter hook numbers of the inet families (`enum nf_inet_hooks`).
public enum NetfilterHook {
    public static let prerouting = UInt32(NF_INET_PRE_ROUTING.rawValue)
    public static let input = UInt32(NF_INET_LOCAL_IN.rawValue)
    public static let forward = UInt32(NF_INET_FORWARD.rawValue)
    public static let output = UInt32(NF_INET_LOCAL_OUT.rawValue)
    public static let postrouting = UInt32(NF_INET_POST_ROUTING.rawValue)
}

/// Flags of an nf_tables set (`enum nft_set_flags`).
public enum NftSetFlag {
    public static let anonymous = UInt32(NFT_SET_ANONYMOUS.rawValue)
    public static let constant = UInt32(NFT_SET_CONSTANT.rawValue)
    public static let interval = UInt32(NFT_SET_INTERVAL.rawValue)
    public static let map = UInt32(NFT_SET_MAP.rawValue)
    public static let timeout = UInt32(NFT_SET_TIMEOUT.rawValue)
    /// `NFT_SET_EVAL`: `dynamic`, updated from the packet path.
    public static let dynamic = UInt32(NFT_SET_EVAL.rawValue)
    public static let object = UInt32(NFT_SET_OBJECT.rawValue)
    public static let concatenation = UInt32(NFT_SET_CONCAT.rawValue)
    /// `NFT_SET_EXPR`: elements carry expressions (a `counter` per element).
    public static let expressions = UInt32(NFT_SET_EXPR.rawValue)
}

/// Data type id of a verdict map's data (`NFT_DATA_VERDICT`).
public let nftVerdictDataType = UInt32(NFT_DATA_VERDICT.rawValue)

/// nf_tables attribute numbers for hand-built requests (the typed writers cover the rest).
public enum NftAttribute {
    /// `NFTA_TABLE_NAME`.
    public static let tableName = UInt16(NFTA_TABLE_NAME.rawValue)
    /// `NFTA_SET_ELEM_LIST_TABLE`.
    public static let elementListTable = UInt16(NFTA_SET_ELEM_LIST_TABLE.rawValue)
    /// `NFTA_SET_ELEM_LIST_SET`.
    public static let elementListSet = UInt16(NFTA_SET_ELEM_LIST_SET.rawValue)
}
