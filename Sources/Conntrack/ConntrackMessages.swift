import Netlink
import ServiceModel

/// The ctnetlink wire format: parsing dumped `IPCTNL_MSG_CT_NEW` messages and writing
/// the tuple attributes of requests, through the Netlink module's attribute reader and
/// writer.
enum ConntrackMessage {
    /// `IPCTNL_MSG_CT_GET`: the dump request.
    static let getEntries = ConntrackWire.getEntries
    /// `IPCTNL_MSG_CT_DELETE`: deletes one entry (by tuple) or, without tuple, flushes.
    static let deleteEntry = ConntrackWire.deleteEntry

    /// The `nfgen_family` of `family` (`NFPROTO_IPV4/6`, equal to `AF_INET/6`).
    static func netfilterFamily(_ family: IPFamily) -> UInt8 {
        family == .v4 ? NetfilterFamily.ipv4 : NetfilterFamily.ipv6
    }

    // MARK: Reading

    /// A tuple's attributes as found, before they are checked for completeness.
    struct RawTuple {
        var source: IPAddress?
        var destination: IPAddress?
        var protocolNumber: UInt8?
        var sourcePort: UInt16?
        var destinationPort: UInt16?

        /// Parses the members of a `CTA_TUPLE_ORIG` or `CTA_TUPLE_REPLY` nest.
        init(_ nest: NetlinkAttribute) {
            nest.forEachNested { member in
                switch member.type {
                case ConntrackWire.TupleAttribute.addresses:
                    member.forEachNested { address in
                        switch (address.type, address.count) {
                        case (ConntrackWire.AddressAttribute.ipv4Source, 4), (ConntrackWire.AddressAttribute.ipv6Source, 16):
                            source = IPAddress(bytes: address.bytes)
                        case (ConntrackWire.AddressAttribute.ipv4Destination, 4),
                             (ConntrackWire.AddressAttribute.ipv6Destination, 16):
                            destination = IPAddress(bytes: address.bytes)
                        default:
                            break
                        }
                    }
                case ConntrackWire.TupleAttribute.ports:
                    member.forEachNested { field in
                        switch field.type {
                        case ConntrackWire.ProtocolAttribute.number: protocolNumber = field.u8
                        case ConntrackWire.ProtocolAttribute.sourcePort: sourcePort = field.bigEndian16
                        case ConntrackWire.ProtocolAttribute.destinationPort: destinationPort = field.bigEndian16
                        default: break
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
    /// - Throws: ``NetlinkError/malformed(_:)`` when the message is shorter than its
    ///   headers, or a TCP, UDP or SCTP entry lacks part of its tuples.
    static func flow(from message: NetlinkMessageView, family: IPFamily) throws(NetlinkError) -> ConntrackFlow? {
        guard message.hasNetfilterHeader else {
            throw .malformed("conntrack message of \(message.length) bytes is shorter than its headers")
        }
        guard message.subsystem == NetfilterSubsystem.conntrack.rawValue, message.message == ConntrackWire.newEntry,
              message.family == netfilterFamily(family) else { return nil }

        var original: RawTuple?
        var reply: RawTuple?
        var status: UInt32 = 0
        var zone: UInt16 = 0
        var id: UInt32?
        var tcpState: UInt8?
        message.forEachAttribute { attribute in
            switch attribute.type {
            case ConntrackWire.Attribute.originalTuple: original = RawTuple(attribute)
            case ConntrackWire.Attribute.replyTuple: reply = RawTuple(attribute)
            case ConntrackWire.Attribute.status: status = attribute.bigEndian32 ?? status
            case ConntrackWire.Attribute.zone: zone = attribute.bigEndian16 ?? zone
            // Opaque: sent back exactly as received.
            case ConntrackWire.Attribute.id: id = attribute.raw32 ?? id
            case ConntrackWire.Attribute.protocolInfo:
                attribute.forEachNested { info in
                    guard info.type == ConntrackWire.ProtocolInfoAttribute.tcp else { return }
                    info.forEachNested { field in
                        if field.type == ConntrackWire.TCPInfoAttribute.state { tcpState = field.u8 ?? tcpState }
                    }
                }
            default: break
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
            status: ConntrackStatus(rawValue: status), zone: zone, id: id, tcpState: tcpState)
    }

    // MARK: Writing

    /// Appends a tuple nest of `type` (``ConntrackWire/Attribute/originalTuple``,
    /// ``ConntrackWire/Attribute/replyTuple``) for `tuple` of protocol `transport`. The
    /// addresses must be of one family.
    static func putTuple(_ tuple: FlowTuple, transport: TransportProtocol, type: UInt16, into message: NetlinkMessageWriter) {
        let v4 = tuple.source.family == .v4
        message.nest(type) { tupleNest in
            tupleNest.nest(ConntrackWire.TupleAttribute.addresses) { addresses in
                addresses.put(v4 ? ConntrackWire.AddressAttribute.ipv4Source : ConntrackWire.AddressAttribute.ipv6Source,
                              bytes: tuple.source.bytes)
                addresses.put(v4 ? ConntrackWire.AddressAttribute.ipv4Destination : ConntrackWire.AddressAttribute.ipv6Destination,
                              bytes: tuple.destination.bytes)
            }
            tupleNest.nest(ConntrackWire.TupleAttribute.ports) { ports in
                ports.put(ConntrackWire.ProtocolAttribute.number, u8: transport.number)
                ports.put(ConntrackWire.ProtocolAttribute.sourcePort, bigEndian16: tuple.sourcePort)
                ports.put(ConntrackWire.ProtocolAttribute.destinationPort, bigEndian16: tuple.destinationPort)
            }
        }
    }

    /// Appends the attributes of an `IPCTNL_MSG_CT_DELETE` request for `flow`: its
    /// original tuple, its zone (when not 0) and its ID (when known).
    static func putDeleteAttributes(_ flow: ConntrackFlow, into message: NetlinkMessageWriter) {
        putTuple(flow.original, transport: flow.transport, type: ConntrackWire.Attribute.originalTuple, into: message)
        if flow.zone != 0 {
            message.put(ConntrackWire.Attribute.zone, bigEndian16: flow.zone)
        }
        if let id = flow.id {
            message.put(ConntrackWire.Attribute.id, raw32: id)
        }
    }
}
