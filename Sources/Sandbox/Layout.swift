/// The fixed addressing plan of the sandbox topology.
///
/// ```
///                      lan (bridge br-lan)  192.0.2.0/24, 2001:db8:0:2::/64
///          ┌──────────────────┼─────────────────────┐
///       client             node-1                 node-2
///   192.0.2.100         192.0.2.10             192.0.2.20
///   2001:db8:0:2::100   2001:db8:0:2::10       2001:db8:0:2::20
///                       cbr0 198.19.1.1/24     cbr0 198.19.2.1/24
///                       2001:db8:1:1::1/64     2001:db8:1:2::1/64
///                     ┌─────┼─────┐                 │
///                   pod-1 pod-2 pod-3             pod-4
///                   .11   .12   .13               198.19.2.11
/// ```
///
/// - client routes the external / load-balancer ranges (203.0.113.0/24,
///   2001:db8:0:203::/64) via node-1, like a load balancer would, and has no route
///   to the pod network.
/// - node-1 forwards, has a default route via the client "like any node has", and
///   routes node-2's pod range via 192.0.2.20 (and the reverse on node-2).
/// - pods have default routes via their node's bridge address; their veths are ports of
///   `cbr0` with hairpin mode on (as a bridge CNI configures them), so a pod can reach a
///   service whose endpoint is itself also where the host has br_netfilter loaded (then
///   such a packet is bridged back out of the port it came in on).
///
/// Only documentation and benchmark ranges are used (RFC 5737, RFC 2544, RFC 3849).
public enum SandboxLayout {
    public struct NodeLayout: Sendable, Hashable {
        /// "node-1" or "node-2"; also the node name endpoints refer to.
        public let name: String
        public let lanIPv4: String
        public let lanIPv6: String
        /// Address of the pod bridge `cbr0` (the pods' default gateway).
        public let bridgeIPv4: String
        public let bridgeIPv6: String
        /// The node's pod range (on `cbr0`).
        public let podIPv4CIDR: String
        public let podIPv6CIDR: String
    }

    public struct PodLayout: Sendable, Hashable {
        /// "pod-1" ... "pod-4"; also the name the pod's echo server answers with.
        public let name: String
        /// Name of the node the pod runs on.
        public let node: String
        public let ipv4: String
        public let ipv6: String
    }

    public static let lanIPv4CIDR = "192.0.2.0/24"
    public static let lanIPv6CIDR = "2001:db8:0:2::/64"
    public static let clientIPv4 = "192.0.2.100"
    public static let clientIPv6 = "2001:db8:0:2::100"
    /// External / load-balancer addresses: the client routes them to node-1.
    public static let externalIPv4CIDR = "203.0.113.0/24"
    public static let externalIPv6CIDR = "2001:db8:0:203::/64"
    /// All pod ranges together (the cluster CIDRs a proxy on a node should be told).
    public static let clusterIPv4CIDR = "198.19.0.0/16"
    public static let clusterIPv6CIDR = "2001:db8:1::/48"
    /// A range for ClusterIPs that no interface or route uses (a suggestion for service
    /// tests; nothing in the topology depends on it). Inside 198.18.0.0/15 and
    /// 2001:db8::/32 like everything else.
    public static let suggestedServiceIPv4CIDR = "198.18.0.0/16"
    public static let suggestedServiceIPv6CIDR = "2001:db8:18::/112"

    public static let node1 = NodeLayout(
        name: "node-1", lanIPv4: "192.0.2.10", lanIPv6: "2001:db8:0:2::10",
        bridgeIPv4: "198.19.1.1", bridgeIPv6: "2001:db8:1:1::1",
        podIPv4CIDR: "198.19.1.0/24", podIPv6CIDR: "2001:db8:1:1::/64")
    public static let node2 = NodeLayout(
        name: "node-2", lanIPv4: "192.0.2.20", lanIPv6: "2001:db8:0:2::20",
        bridgeIPv4: "198.19.2.1", bridgeIPv6: "2001:db8:1:2::1",
        podIPv4CIDR: "198.19.2.0/24", podIPv6CIDR: "2001:db8:1:2::/64")
    public static let nodes = [node1, node2]

    public static let pods = [
        PodLayout(name: "pod-1", node: "node-1", ipv4: "198.19.1.11", ipv6: "2001:db8:1:1::11"),
        PodLayout(name: "pod-2", node: "node-1", ipv4: "198.19.1.12", ipv6: "2001:db8:1:1::12"),
        PodLayout(name: "pod-3", node: "node-1", ipv4: "198.19.1.13", ipv6: "2001:db8:1:1::13"),
        PodLayout(name: "pod-4", node: "node-2", ipv4: "198.19.2.11", ipv6: "2001:db8:1:2::11"),
    ]

    /// Interface names inside the namespaces.
    public static let lanBridge = "br-lan"
    /// The node's / client's / pod's uplink interface.
    public static let uplink = "eth0"
    /// The pod bridge on each node.
    public static let podBridge = "cbr0"
    /// Host side of a pod's veth on its node: "veth-pod-1", ...
    public static func podVeth(_ pod: String) -> String { "veth-\(pod)" }
}
