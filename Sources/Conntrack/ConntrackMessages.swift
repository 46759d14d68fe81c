import CNetfilter
import Netlink
import ServiceModel

#if canImport(Glibc)
import Glibc
#endif

/// The ctnetlink wire format: parsing dumped `IPCTNL_MSG_CT_NEW` messages and writing
/// the tuple attributes of requests.
///
/// Parsing reads through bounds-checked raw loads at offsets inside the bytes the
/// kernel delivered; writing uses libmnl's attribute helpers into buffers that
/// ``NetlinkRequestList`` sized for a whole message.
enum ConntrackMessage {
    /// `sizeof(struct nlmsghdr)`.
    static let headerLength = MemoryLayout<nlmsghdr>.size
    /// `NLMSG_ALIGN(sizeof(struct nfgenmsg))`: where attributes start after the netlink header.
    static let netfilterHeaderLength = (MemoryLayout<nfgenmsg>.size + 3) & ~3
    /// `sizeof(struct nlattr)`.
    static let attributeHeaderLength = MemoryLayout<nlattr>.size
    /// `NLA_TYPE_MASK`: the type without the nested and byte-order flags.
    static let attributeTypeMask: UInt16 = 0x3FFF

    /// `IPCTNL_MSG_CT_NEW`: a dumped entry.
    static let newEntry = UInt16(IPCTNL_MSG_CT_NEW.rawValue)
    /// `IPCTNL_MSG_CT_GET`: the dump request.
    static let getEntries = UInt16(IPCTNL_MSG_CT_GET.rawValue)
    /// `IPCTNL_MSG_CT_DELETE`: deletes one entry (by tuple) or, without tuple, flushes.
    static let deleteEntry = UInt16(IPCTNL_MSG_CT_DELETE.rawValue)

    /// The `nfgen_family` of `family`: `AF_INET` or `AF_INET6` (equal to `NFPROTO_IPV4/6`).
    static func netfilterFamily(_ family: IPFamily) -> UInt8 {
        family == .v4 ? UInt8(AF_INET) : UInt8(AF_INET6)
    }

    // MARK: Reading

    /// Calls `body` with the type (flags masked off) and payload of each attribute in
    /// `bytes`; stops at the first attribute whose length does not fit.
    static func forEachAttribute(in bytes: UnsafeRawBufferPointer, _ body: (UInt16, UnsafeRawBufferPointer) -> Void) {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while bytes.count - offset >= attributeHeaderLength {
            let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            let type = bytes.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self) & attributeTypeMask
            guard length >= attributeHeaderLength, length <= bytes.count - offset else { return }
            body(type, UnsafeRawBufferPointer(start: base + offset + attributeHeaderLength, count: length - attributeHeaderLength))
            offset += (length + 3) & ~3
        }
    }

    /// A tuple's attributes as found, before they are checked for completeness.
    struct RawTuple {
        var source: IPAddress?
        var destination: IPAddress?
        var protocolNumber: UInt8?
        var sourcePort: UInt16?
        var destinationPort: UInt16?

        /// Parses the payload of a `CTA_TUPLE_ORIG` or `CTA_TUPLE_REPLY` nest.
        init(_ nest: UnsafeRawBufferPointer) {
            forEachAttribute(in: nest) { type, payload in
                switch UInt32(type) {
                case CTA_TUPLE_IP.rawValue:
                    forEachAttribute(in: payload) { type, payload in
                        switch UInt32(type) {
                        case CTA_IP_V4_SRC.rawValue where payload.count == 4,
                             CTA_IP_V6_SRC.rawValue where payload.count == 16:
                            source = IPAddress(bytes: Array(payload))
                        case CTA_IP_V4_DST.rawValue where payload.count == 4,
                             CTA_IP_V6_DST.rawValue where payload.count == 16:
                            destination = IPAddress(bytes: Array(payload))
                        default:
                            break
                        }
                    }
                case CTA_TUPLE_PROTO.rawValue:
                    forEachAttribute(in: payload) { type, payload in
                        switch UInt32(type) {
                        case CTA_PROTO_NUM.rawValue where payload.count >= 1:
                            protocolNumber = payload[0]
                        case CTA_PROTO_SRC_PORT.rawValue where payload.count >= 2:
                            sourcePort = UInt16(bigEndian: payload.loadUnaligned(as: UInt16.self))
                        case CTA_PROTO_DST_PORT.rawValue where payload.count >= 2:
                            destinationPort = UInt16(bigEndian: payload.loadUnaligned(as: UInt16.self))
                        default:
                            break
                        }
                    }
                default:
                    break
                }
            }
        }

        /// The tuple, or nil when a field is missing or the addresses are of another family.
        func tuple(family: IPFamily) -> FlowTuple? {
            guard let source, let destination, let sourcePort, let destinationPort,
                  source.family == family, destination.family == family else { return nil }
            return FlowTuple(source: source, destination: destination, sourcePort: sourcePort, destinationPort: destinationPort)
        }
    }

    /// The entry a dumped message describes.
    ///
    /// - Returns: nil for messages that are not conntrack entries of `family`, and for
    ///   entries of protocols other than TCP, UDP and SCTP.
    /// - Throws: ``NetlinkError/malformed(_:)`` when a TCP, UDP or SCTP entry lacks
    ///   part of its tuples.
    static func flow(from message: UnsafeRawBufferPointer, family: IPFamily) throws(NetlinkError) -> ConntrackFlow? {
        let attributesOffset = headerLength + netfilterHeaderLength
        guard message.count >= attributesOffset else {
            throw .malformed("conntrack message of \(message.count) bytes is shorter than its headers")
        }
        let type = message.loadUnaligned(fromByteOffset: 4, as: UInt16.self)
        guard type == UInt16(NFNL_SUBSYS_CTNETLINK) << 8 | newEntry else { return nil }
        guard message[headerLength] == netfilterFamily(family) else { return nil }

        var original: RawTuple?
        var reply: RawTuple?
        var status: UInt32 = 0
        var zone: UInt16 = 0
        var id: UInt32?
        forEachAttribute(in: UnsafeRawBufferPointer(rebasing: message[attributesOffset...])) { type, payload in
            switch UInt32(type) {
            case CTA_TUPLE_ORIG.rawValue:
                original = RawTuple(payload)
            case CTA_TUPLE_REPLY.rawValue:
                reply = RawTuple(payload)
            case CTA_STATUS.rawValue where payload.count >= 4:
                status = UInt32(bigEndian: payload.loadUnaligned(as: UInt32.self))
            case CTA_ZONE.rawValue where payload.count >= 2:
                zone = UInt16(bigEndian: payload.loadUnaligned(as: UInt16.self))
            case CTA_ID.rawValue where payload.count >= 4:
                // Opaque: sent back exactly as received.
                id = payload.loadUnaligned(as: UInt32.self)
            default:
                break
            }
        }
        guard let original, let reply else {
            throw .malformed("conntrack entry without \(original == nil ? "CTA_TUPLE_ORIG" : "CTA_TUPLE_REPLY")")
        }
        guard let number = original.protocolNumber,
              let transport = TransportProtocol.allCases.first(where: { $0.number == number }) else { return nil }
        guard let originalTuple = original.tuple(family: family), let replyTuple = reply.tuple(family: family) else {
            throw .malformed("\(transport) conntrack entry with an incomplete tuple")
        }
        return ConntrackFlow(
            transport: transport, original: originalTuple, reply: replyTuple,
            status: ConntrackStatus(rawValue: status), zone: zone, id: id)
    }

    // MARK: Writing

    /// Appends a tuple nest of `type` (`CTA_TUPLE_ORIG`, `CTA_TUPLE_REPLY`) for `tuple`
    /// of protocol `transport`. The addresses must be of one family.
    static func putTuple(
        _ tuple: FlowTuple, transport: TransportProtocol, type: ctattr_type, into message: UnsafeMutablePointer<nlmsghdr>
    ) {
        let v4 = tuple.source.family == .v4
        let outer = mnl_attr_nest_start(message, UInt16(type.rawValue))
        let addresses = mnl_attr_nest_start(message, UInt16(CTA_TUPLE_IP.rawValue))
        let sourceType = v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC
        let destinationType = v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST
        tuple.source.bytes.withUnsafeBytes { bytes in
            mnl_attr_put(message, UInt16(sourceType.rawValue), bytes.count, bytes.baseAddress)
        }
        tuple.destination.bytes.withUnsafeBytes { bytes in
            mnl_attr_put(message, UInt16(destinationType.rawValue), bytes.count, bytes.baseAddress)
        }
        mnl_attr_nest_end(message, addresses)
        let ports = mnl_attr_nest_start(message, UInt16(CTA_TUPLE_PROTO.rawValue))
        mnl_attr_put_u8(message, UInt16(CTA_PROTO_NUM.rawValue), transport.number)
        mnl_attr_put_u16(message, UInt16(CTA_PROTO_SRC_PORT.rawValue), tuple.sourcePort.bigEndian)
        mnl_attr_put_u16(message, UInt16(CTA_PROTO_DST_PORT.rawValue), tuple.destinationPort.bigEndian)
        mnl_attr_nest_end(message, ports)
        mnl_attr_nest_end(message, outer)
    }

    /// Appends the attributes of an `IPCTNL_MSG_CT_DELETE` request for `flow`: its
    /// original tuple, its zone (when not 0) and its ID (when known).
    static func putDeleteAttributes(_ flow: ConntrackFlow, into message: UnsafeMutablePointer<nlmsghdr>) {
        putTuple(flow.original, transport: flow.transport, type: CTA_TUPLE_ORIG, into: message)
        if flow.zone != 0 {
            mnl_attr_put_u16(message, UInt16(CTA_ZONE.rawValue), flow.zone.bigEndian)
        }
        if let id = flow.id {
            mnl_attr_put_u32(message, UInt16(CTA_ID.rawValue), id)
        }
    }
}
