import Nftables

/// Names and fixed parts of the ruleset nftproxy programs. docs/ruleset.md explains the shape.
///
/// The shape obeys the kernel's scaling rules (docs/kernel.md): no anonymous sets, and every
/// named map is referenced by a constant number of rules. Services differ only in set and
/// map elements; rules and chains depend only on the node configuration and on which
/// endpoint counts occur (one "bucket" chain + map per count).
public enum RulesetLayout {
    /// The table name, in both the `ip` and `ip6` family.
    public static let tableName = "nftproxy"

    public enum SetName {
        /// ClusterIPs (for the undefined-port reject and the masquerade source check).
        public static let clusterIPs = "cluster-ips"
        /// ClusterIP / externalIP / LB IP . protocol . port : goto the frontend's bucket chain.
        public static let serviceIPs = "service-ips"
        /// protocol . NodePort : goto the bucket chain.
        public static let serviceNodePorts = "service-nodeports"
        /// Frontends of services without usable endpoints: rejected.
        public static let noEndpointServices = "no-endpoint-services"
        public static let noEndpointNodePorts = "no-endpoint-nodeports"
        /// endpoint . endpoint: a pod that reached itself through a service (masqueraded).
        public static let hairpinEndpoints = "hairpin-endpoints"
        public static let serviceBackendsPrefix = "service-backends-"
        public static let nodePortBackendsPrefix = "nodeport-backends-"
        /// Frontend . index -> endpoint, for frontends with `count` endpoints.
        public static func serviceBackends(_ count: Int) -> String { serviceBackendsPrefix + String(count) }
        /// protocol . NodePort . index -> endpoint.
        public static func nodePortBackends(_ count: Int) -> String { nodePortBackendsPrefix + String(count) }
    }

    public enum ChainName {
        public static let natPrerouting = "nat-prerouting"
        public static let natOutput = "nat-output"
        public static let natPostrouting = "nat-postrouting"
        public static let filterInput = "filter-input"
        public static let filterForward = "filter-forward"
        public static let filterOutput = "filter-output"
        public static let services = "services"
        public static let masqueradeOffCluster = "masquerade-off-cluster"
        public static let markForMasquerade = "mark-for-masquerade"
        public static let masquerading = "masquerading"
        public static let rejectUnserved = "reject-unserved"
        public static let rejectPacket = "reject-packet"
        /// DNAT for ClusterIP frontends with `count` endpoints (source kept).
        public static func serviceBalancer(_ count: Int) -> String { "service-lb-\(count)" }
        /// DNAT for externalIP / LoadBalancer frontends with `count` endpoints (masqueraded).
        public static func externalBalancer(_ count: Int) -> String { "external-lb-\(count)" }
        /// DNAT for NodePorts with `count` endpoints (masqueraded).
        public static func nodePortBalancer(_ count: Int) -> String { "nodeport-lb-\(count)" }
    }

    /// The smallest `size` a set is declared with.
    public static let minimumSetSize = 1024

    /// The `size` of a set created to hold `count` elements: room for at least as many again
    /// (2 to 4 times `count`, a power of two, at least `minimumSetSize`), so that it is
    /// re-created rarely as it grows (`TableDiff` re-creates a set only when it overflows).
    public static func setSize(forElements count: Int) -> Int {
        var size = minimumSetSize
        while size < 2 * count { size *= 2 }
        return size
    }

    /// Hook priorities. NAT at the standard dstnat/srcnat priorities; the reject checks run
    /// after DNAT (so only traffic no service claimed is left with a service address).
    public enum Priority {
        public static let dstnat: Int32 = -100
        public static let srcnat: Int32 = 100
        public static let filter: Int32 = -10
    }

    /// Selectors of a frontend key: `daddr . l4proto . dport`.
    public static func frontendKey(_ family: TableFamily) -> [Selector] {
        [.address(.destination, family), .l4proto, .transportDestinationPort]
    }

    /// Selectors of a NodePort key: `l4proto . dport`.
    public static let nodePortKey: [Selector] = [.l4proto, .transportDestinationPort]

    /// Data of a backends map: `daddr . dport` of the endpoint.
    public static func endpointData(_ family: TableFamily) -> SetFields {
        .typeOf([.address(.destination, family), .transportDestinationPort])
    }
}
