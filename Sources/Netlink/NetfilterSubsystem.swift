import CNetfilter

#if canImport(Glibc)
import Glibc
#endif

/// An nfnetlink subsystem: the high byte of a netfilter netlink message type.
///
/// Batches (``NetlinkBatch``) are always ``nftables``; dumps and requests can also
/// address others, such as ``conntrack``.
public struct NetfilterSubsystem: RawRepresentable, Hashable, Sendable {
    /// The `NFNL_SUBSYS_*` number.
    public var rawValue: UInt8

    /// A subsystem by its `NFNL_SUBSYS_*` number.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `NFNL_SUBSYS_NFTABLES`: tables, chains, sets, rules (`NFT_MSG_*`).
    public static let nftables = NetfilterSubsystem(rawValue: UInt8(NFNL_SUBSYS_NFTABLES))

    /// `NFNL_SUBSYS_CTNETLINK`: connection tracking entries (`IPCTNL_MSG_CT_*`).
    public static let conntrack = NetfilterSubsystem(rawValue: UInt8(NFNL_SUBSYS_CTNETLINK))
}

/// How errors name requests that have no caller-given name: `list tables ip`,
/// `get generation`, `conntrack message 1 ip6`.
enum RequestName {
    /// A readable name for a dump (`dump` true) or single request of `type` in `family`.
    static func describe(subsystem: NetfilterSubsystem, type: UInt16, family: UInt8, dump: Bool) -> String {
        let familyName = familyName(family)
        guard subsystem == .nftables else {
            let subsystemName = subsystem == .conntrack ? "conntrack" : "subsystem \(subsystem.rawValue)"
            return "\(subsystemName) \(dump ? "dump" : "message") \(type)\(familyName.map { " \($0)" } ?? "")"
        }
        let objects: String
        switch UInt32(type) {
        case NFT_MSG_GETTABLE.rawValue: objects = "tables"
        case NFT_MSG_GETCHAIN.rawValue: objects = "chains"
        case NFT_MSG_GETRULE.rawValue: objects = "rules"
        case NFT_MSG_GETSET.rawValue: objects = "sets"
        case NFT_MSG_GETSETELEM.rawValue: objects = "set elements"
        case NFT_MSG_GETGEN.rawValue: objects = "generation"
        case NFT_MSG_GETOBJ.rawValue: objects = "objects"
        case NFT_MSG_GETFLOWTABLE.rawValue: objects = "flowtables"
        default: objects = "nf_tables message \(type)"
        }
        let verb = dump ? "list" : "get"
        return "\(verb) \(objects)\(familyName.map { " \($0)" } ?? "")"
    }

    /// nft's name for a protocol family, or nil for `AF_UNSPEC`.
    static func familyName(_ family: UInt8) -> String? {
        switch Int32(family) {
        case AF_UNSPEC: return nil
        case Int32(NFPROTO_INET): return "inet"
        case AF_INET: return "ip"
        case AF_INET6: return "ip6"
        case Int32(NFPROTO_ARP): return "arp"
        case Int32(NFPROTO_NETDEV): return "netdev"
        case Int32(NFPROTO_BRIDGE): return "bridge"
        default: return "family \(family)"
        }
    }
}
