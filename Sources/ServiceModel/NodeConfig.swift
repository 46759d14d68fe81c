/// What the compiler needs to know about the node it programs.
public struct NodeConfig: Hashable, Sendable {
    /// Name of this node: endpoints whose nodeName equals it are local.
    public var nodeName: String?
    /// The node's primary addresses (`--nodeport-addresses primary` turns them into ranges).
    public var nodeIPs: [IPAddress]
    /// Pod network ranges: traffic from them is pod traffic and keeps its source.
    public var clusterCIDRs: [CIDR]
    /// Where NodePorts answer: local addresses inside these ranges. A family with no range
    /// here answers on every local address of that family except loopback.
    public var nodePortAddresses: [CIDR]
    /// Masquerade all traffic to services, not only traffic from outside the cluster CIDRs.
    public var masqueradeAll: Bool
    /// Bit of the packet mark that requests masquerading (0...31).
    public var masqueradeBit: Int
    /// This node's zone (`topology.kubernetes.io/zone`): endpoints hinted for it are
    /// preferred (topology-aware routing). nil: hints are ignored.
    public var zone: String? = nil
    /// Count each endpoint's connections, packets and bytes in the kernel (dynamic sets the
    /// packet path fills; docs/ruleset.md, "Endpoint counters"). Off: no counting rules at all.
    public var endpointCounters: Bool

    public init(nodeName: String? = nil, nodeIPs: [IPAddress] = [], clusterCIDRs: [CIDR] = [],
                nodePortAddresses: [CIDR] = [], masqueradeAll: Bool = false, masqueradeBit: Int = 14,
                endpointCounters: Bool = true) {
        self.nodeName = nodeName; self.nodeIPs = nodeIPs; self.clusterCIDRs = clusterCIDRs
        self.nodePortAddresses = nodePortAddresses; self.masqueradeAll = masqueradeAll
        self.masqueradeBit = masqueradeBit; self.endpointCounters = endpointCounters
    }

    /// The packet mark bit as a mask.
    public var masqueradeMark: UInt32 { UInt32(1) << UInt32(masqueradeBit) }
}
