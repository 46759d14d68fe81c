import Netlink
import ServiceModel

/// One direction of a tracked connection: addresses and ports as the packets of that
/// direction carry them.
public struct FlowTuple: Hashable, Sendable, CustomStringConvertible {
    /// The sender's address.
    public var source: IPAddress
    /// The receiver's address.
    public var destination: IPAddress
    /// The sender's port.
    public var sourcePort: UInt16
    /// The receiver's port.
    public var destinationPort: UInt16

    public init(source: IPAddress, destination: IPAddress, sourcePort: UInt16, destinationPort: UInt16) {
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
    }

    /// The family of the source address (a tuple from the kernel never mixes families).
    public var family: IPFamily { source.family }

    /// `198.51.100.7:40000 -> 198.18.0.10:53`, IPv6 addresses in brackets.
    public var description: String {
        "\(Self.endpoint(source, sourcePort)) -> \(Self.endpoint(destination, destinationPort))"
    }

    static func endpoint(_ address: IPAddress, _ port: UInt16) -> String {
        address.family == .v4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
}

/// The status bits of a conntrack entry (`CTA_STATUS`, the kernel's `IPS_*` flags).
///
/// Only the bits named here have names; ``rawValue`` keeps all the kernel reported.
public struct ConntrackStatus: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `IPS_EXPECTED`: the connection was expected by a helper (FTP data, …).
    public static let expected = ConntrackStatus(rawValue: ConntrackStatusBit.expected)
    /// `IPS_SEEN_REPLY`: packets were seen in the reply direction.
    public static let seenReply = ConntrackStatus(rawValue: ConntrackStatusBit.seenReply)
    /// `IPS_ASSURED`: the connection is established enough not to be dropped early.
    public static let assured = ConntrackStatus(rawValue: ConntrackStatusBit.assured)
    /// `IPS_CONFIRMED`: the entry is in the conntrack table (always set for dumped entries).
    public static let confirmed = ConntrackStatus(rawValue: ConntrackStatusBit.confirmed)
    /// `IPS_SRC_NAT`: the source was translated (SNAT or masquerade).
    public static let sourceNAT = ConntrackStatus(rawValue: ConntrackStatusBit.sourceNAT)
    /// `IPS_DST_NAT`: the destination was translated (DNAT to an endpoint).
    public static let destinationNAT = ConntrackStatus(rawValue: ConntrackStatusBit.destinationNAT)
    /// `IPS_DYING`: the entry is being removed.
    public static let dying = ConntrackStatus(rawValue: ConntrackStatusBit.dying)
    /// `IPS_OFFLOAD`: the flow is handled by a flowtable.
    public static let offload = ConntrackStatus(rawValue: ConntrackStatusBit.offload)

    private static let names: [(ConntrackStatus, String)] = [
        (.expected, "expected"), (.seenReply, "seen-reply"), (.assured, "assured"), (.confirmed, "confirmed"),
        (.sourceNAT, "snat"), (.destinationNAT, "dnat"), (.dying, "dying"), (.offload, "offload"),
    ]

    /// The named bits, comma separated (`seen-reply,assured,confirmed,dnat`), then any
    /// other bits in hexadecimal.
    public var description: String {
        var parts = Self.names.filter { contains($0.0) }.map(\.1)
        let named = Self.names.reduce(UInt32(0)) { $0 | $1.0.rawValue }
        if rawValue & ~named != 0 { parts.append("0x" + String(rawValue & ~named, radix: 16)) }
        return parts.joined(separator: ",")
    }
}

/// One conntrack entry: its original and reply tuples (its identity in the kernel's
/// table), and what the kernel said about it when it was listed.
///
/// For a connection that was DNATed to an endpoint, `original.destination` is the
/// address the client sent to (a ClusterIP, a node address) and `reply.source` is
/// the endpoint, which is also true of a UDP flow that never saw a reply.
///
/// Equality compares every stored property, including the ``status`` snapshot and
/// the kernel's ``id``; compare ``transport``, ``original`` and ``reply`` to ask
/// whether two values describe the same connection.
public struct ConntrackFlow: Hashable, Sendable, CustomStringConvertible {
    /// TCP, UDP or SCTP (entries of other protocols are not listed).
    public var transport: TransportProtocol
    /// The tuple of the first packet, as the client sent it.
    public var original: FlowTuple
    /// The tuple that answers carry, as the endpoint sends them: after DNAT,
    /// `reply.source` is the endpoint and `reply.destination` the client (or, after
    /// SNAT/masquerade, the translated source).
    public var reply: FlowTuple
    /// The status bits when the entry was listed.
    public var status: ConntrackStatus
    /// The conntrack zone (`CTA_ZONE`); 0 is the default zone.
    public var zone: UInt16
    /// The kernel's opaque ID of the entry (`CTA_ID`), or nil when unknown. Deletes
    /// send it along, so that an entry that has since been replaced by a new one with
    /// the same tuple is left alone (the kernel then answers `ENOENT`).
    public var id: UInt32?
    /// A TCP entry's state (`CTA_PROTOINFO_TCP_STATE`, `enum tcp_conntrack`); nil for
    /// other protocols, or when the kernel did not say.
    public var tcpState: UInt8?

    public init(
        transport: TransportProtocol,
        original: FlowTuple,
        reply: FlowTuple,
        status: ConntrackStatus = [],
        zone: UInt16 = 0,
        id: UInt32? = nil,
        tcpState: UInt8? = nil
    ) {
        self.transport = transport
        self.original = original
        self.reply = reply
        self.status = status
        self.zone = zone
        self.id = id
        self.tcpState = tcpState
    }

    /// Whether the connection is open: a TCP connection being set up or established (not
    /// closing, nor in TIME_WAIT), and any UDP or SCTP entry (it lives until its timeout).
    public var isOpen: Bool {
        guard transport == .tcp, let tcpState else { return true }
        return [ConntrackWire.TCPState.synSent, ConntrackWire.TCPState.synReceived,
                ConntrackWire.TCPState.established].contains(tcpState)
    }

    /// The address family of the entry.
    public var family: IPFamily { original.family }

    /// Whether the kernel translated the destination (`IPS_DST_NAT`).
    public var isDestinationNAT: Bool { status.contains(.destinationNAT) }

    /// `udp 198.51.100.7:40000 -> 198.18.0.10:53 reply 198.19.1.11:5353 -> 198.51.100.7:40000 [dnat]`
    /// (status bits in brackets: only `dnat`/`snat`; the zone when not 0).
    public var description: String {
        var text = "\(transport) \(original) reply \(reply)"
        let nat = [(ConntrackStatus.destinationNAT, "dnat"), (.sourceNAT, "snat")].filter { status.contains($0.0) }
        if !nat.isEmpty { text += " [" + nat.map(\.1).joined(separator: ",") + "]" }
        if zone != 0 { text += " zone \(zone)" }
        return text
    }
}
