import CNetfilter

/// ctnetlink (`NFNL_SUBSYS_CTNETLINK`) message types and attribute numbers, for the
/// Conntrack module's requests and parsers.
public enum ConntrackWire {
    /// `IPCTNL_MSG_CT_NEW`: a dumped entry.
    public static let newEntry = UInt16(IPCTNL_MSG_CT_NEW.rawValue)
    /// `IPCTNL_MSG_CT_GET`: the dump request.
    public static let getEntries = UInt16(IPCTNL_MSG_CT_GET.rawValue)
    /// `IPCTNL_MSG_CT_DELETE`: deletes one entry (by tuple) or, without tuple, flushes.
    public static let deleteEntry = UInt16(IPCTNL_MSG_CT_DELETE.rawValue)

    /// Top-level attributes of an entry (`enum ctattr_type`).
    public enum Attribute {
        public static let originalTuple = UInt16(CTA_TUPLE_ORIG.rawValue)
        public static let replyTuple = UInt16(CTA_TUPLE_REPLY.rawValue)
        public static let status = UInt16(CTA_STATUS.rawValue)
        public static let protocolInfo = UInt16(CTA_PROTOINFO.rawValue)
        public static let timeout = UInt16(CTA_TIMEOUT.rawValue)
        public static let id = UInt16(CTA_ID.rawValue)
        public static let zone = UInt16(CTA_ZONE.rawValue)
    }

    /// Attributes of the protocol-information nest (`enum ctattr_protoinfo`).
    public enum ProtocolInfoAttribute {
        public static let tcp = UInt16(CTA_PROTOINFO_TCP.rawValue)
    }

    /// Attributes of the TCP information nest (`enum ctattr_protoinfo_tcp`).
    public enum TCPInfoAttribute {
        public static let state = UInt16(CTA_PROTOINFO_TCP_STATE.rawValue)
    }

    /// TCP states of a conntrack entry (`enum tcp_conntrack`) up to an established connection.
    public enum TCPState {
        public static let synSent = UInt8(TCP_CONNTRACK_SYN_SENT.rawValue)
        public static let synReceived = UInt8(TCP_CONNTRACK_SYN_RECV.rawValue)
        public static let established = UInt8(TCP_CONNTRACK_ESTABLISHED.rawValue)
    }

    /// Attributes of a tuple nest (`enum ctattr_tuple`).
    public enum TupleAttribute {
        public static let addresses = UInt16(CTA_TUPLE_IP.rawValue)
        public static let ports = UInt16(CTA_TUPLE_PROTO.rawValue)
    }

    /// Attributes of a tuple's address nest (`enum ctattr_ip`).
    public enum AddressAttribute {
        public static let ipv4Source = UInt16(CTA_IP_V4_SRC.rawValue)
        public static let ipv4Destination = UInt16(CTA_IP_V4_DST.rawValue)
        public static let ipv6Source = UInt16(CTA_IP_V6_SRC.rawValue)
        public static let ipv6Destination = UInt16(CTA_IP_V6_DST.rawValue)
    }

    /// Attributes of a tuple's protocol nest (`enum ctattr_l4proto`).
    public enum ProtocolAttribute {
        public static let number = UInt16(CTA_PROTO_NUM.rawValue)
        public static let sourcePort = UInt16(CTA_PROTO_SRC_PORT.rawValue)
        public static let destinationPort = UInt16(CTA_PROTO_DST_PORT.rawValue)
    }
}
