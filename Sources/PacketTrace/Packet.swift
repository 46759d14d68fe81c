import ServiceModel

/// The first packet of a new connection, as the ruleset sees it.
public struct Packet: Hashable, Sendable {
    /// Source address (rewritten when the packet is masqueraded).
    public var source: IPAddress
    /// Destination address (rewritten by DNAT).
    public var destination: IPAddress
    /// Destination port (rewritten by DNAT).
    public var destinationPort: UInt16
    /// TCP, UDP or SCTP.
    public var transport: TransportProtocol

    /// Creates a packet; both addresses must be of one family.
    public init(source: IPAddress, destination: IPAddress, destinationPort: UInt16, transport: TransportProtocol) {
        self.source = source; self.destination = destination
        self.destinationPort = destinationPort; self.transport = transport
    }

    /// The address family of the packet.
    public var family: IPFamily { destination.family }
}

/// Where a packet enters the node's netfilter hooks.
public enum PacketOrigin: String, Hashable, Sendable, CaseIterable {
    /// From a pod on this node: it arrives from the pod's interface (prerouting).
    case pod
    /// From a process on the node itself (output).
    case node
    /// From outside the node (prerouting): another node, a load balancer, a client.
    case outside
}

/// What the tracer needs to know about the node beyond the ruleset.
public struct NodeFacts: Hashable, Sendable {
    /// Addresses of the node's own interfaces: `fib daddr type local` matches them (and
    /// every loopback address).
    public var localAddresses: Set<IPAddress>

    /// Creates the facts from the node's local addresses.
    public init(localAddresses: Set<IPAddress>) { self.localAddresses = localAddresses }

    /// Whether the routing table would call `address` local.
    public func isLocal(_ address: IPAddress) -> Bool {
        address.isLoopback || localAddresses.contains(address)
    }
}
