import ServiceModel

/// The same workload in upstream kube-proxy's nftables layout (baseline b of
/// docs/benchmarks.md), written from its documented shape, not from its code.
///
/// Common to both shapes: `table ip kube-proxy` with its filter and nat base chains, the
/// `cluster-ips` set, the `service-ips` / `service-nodeports` verdict maps that dispatch
/// to a chain per service port, and in that chain the rule that marks traffic from
/// outside the cluster CIDR for masquerading. They differ in how the chain picks an
/// endpoint:
///
/// - `.dnatMap` (baseline b, as issue 4 describes kube-proxy): one rule
///   `meta l4proto tcp dnat ip to numgen random mod N map { 0 : addr . port, … }`.
///   Hairpin masquerading is not modelled, which only makes this baseline cheaper.
/// - `.endpointChains` (kube-proxy's proxier as released): `numgen random mod N vmap
///   { 0 : goto endpoint-…, … }` and a chain per endpoint (hairpin mark, `dnat to`).
///
/// Both have one anonymous map per service. Element comments and counters, which
/// kube-proxy also writes in places, are left out: they would only make it slower.
struct KubeProxyLayout {
    enum Shape: Sendable {
        case dnatMap
        case endpointChains
    }

    var workload: Workload
    var shape: Shape

    static let table = "kube-proxy"
    static let markBit: UInt32 = 0x4000

    /// The whole script for `nft -f`, written through `write` in pieces.
    func render(_ write: (String) -> Void) {
        var out = ""
        func flush(force: Bool = false) {
            if force || out.utf8.count > 1 << 20 {
                write(out)
                out = ""
            }
        }
        let w = workload
        let cidr = Workload.clusterCIDR
        out += "add table ip \(Self.table)\n"
        out += "delete table ip \(Self.table)\n"
        out += "table ip \(Self.table) {\n"
        out += "\tcomment \"rules for kube-proxy\"\n"

        // Fixed chains first (the element verdicts below refer to per-service chains,
        // declared further down; nft resolves them within the one transaction).
        out += """
        \tchain filter-prerouting {
        \t\ttype filter hook prerouting priority -110; policy accept;
        \t\tct state new jump firewall-check
        \t}
        \tchain filter-input {
        \t\ttype filter hook input priority -110; policy accept;
        \t\tct state new jump nodeport-endpoints-check
        \t\tct state new jump service-endpoints-check
        \t}
        \tchain filter-forward {
        \t\ttype filter hook forward priority -110; policy accept;
        \t\tct state new jump service-endpoints-check
        \t\tct state new jump cluster-ips-check
        \t}
        \tchain filter-output {
        \t\ttype filter hook output priority -110; policy accept;
        \t\tct state new jump service-endpoints-check
        \t\tct state new jump firewall-check
        \t}
        \tchain filter-output-post-dnat {
        \t\ttype filter hook output priority -90; policy accept;
        \t\tct state new jump cluster-ips-check
        \t}
        \tchain nat-prerouting {
        \t\ttype nat hook prerouting priority -100; policy accept;
        \t\tjump services
        \t}
        \tchain nat-output {
        \t\ttype nat hook output priority -100; policy accept;
        \t\tjump services
        \t}
        \tchain nat-postrouting {
        \t\ttype nat hook postrouting priority 100; policy accept;
        \t\tjump masquerading
        \t}
        \tchain cluster-ips-check {
        \t\tip daddr @cluster-ips reject
        \t\tip daddr \(Workload.serviceCIDR) drop
        \t}
        \tchain firewall-check {
        \t\tip daddr . meta l4proto . th dport vmap @firewall-ips
        \t}
        \tchain reject-chain {
        \t\treject
        \t}
        \tchain mark-for-masquerade {
        \t\tmeta mark set meta mark | \(hex(Self.markBit))
        \t}
        \tchain masquerading {
        \t\tmeta mark & \(hex(Self.markBit)) == 0x00000000 return
        \t\tmeta mark set meta mark ^ \(hex(Self.markBit))
        \t\tmasquerade fully-random
        \t}
        \tchain services {
        \t\tip daddr . meta l4proto . th dport vmap @service-ips
        \t\tfib daddr type local ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
        \t}
        \tchain service-endpoints-check {
        \t\tip daddr . meta l4proto . th dport vmap @no-endpoint-services
        \t}
        \tchain nodeport-endpoints-check {
        \t\tip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
        \t}

        """

        // Per service (and per endpoint) chains.
        for index in 0..<w.services {
            let service = serviceChain(index)
            let ip = Workload.clusterIP(index)
            let addresses = w.endpointAddresses(index)
            out += "\tchain \(service) {\n"
            out += "\t\tip daddr \(ip) tcp dport \(Workload.servicePort) ip saddr != \(cidr) jump mark-for-masquerade\n"
            switch shape {
            case .endpointChains:
                if !addresses.isEmpty {
                    let arms = addresses.indices.map { "\($0) : goto \(endpointChain(index, addresses[$0]))" }
                    out += "\t\tnumgen random mod \(addresses.count) vmap { \(arms.joined(separator: ", ")) }\n"
                }
                out += "\t}\n"
                for address in addresses {
                    out += "\tchain \(endpointChain(index, address)) {\n"
                    out += "\t\tip saddr \(address) jump mark-for-masquerade\n"
                    out += "\t\tmeta l4proto tcp dnat ip to \(address):\(Workload.targetPort)\n"
                    out += "\t}\n"
                }
            case .dnatMap:
                if !addresses.isEmpty {
                    let arms = addresses.indices.map { "\($0) : \(addresses[$0]) . \(Workload.targetPort)" }
                    out += "\t\tmeta l4proto tcp dnat ip to numgen random mod \(addresses.count) map { "
                        + arms.joined(separator: ", ") + " }\n"
                }
                out += "\t}\n"
            }
            if w.nodePort(index) != nil {
                out += "\tchain \(externalChain(index)) {\n"
                out += "\t\tjump mark-for-masquerade\n"
                out += "\t\tgoto \(service)\n"
                out += "\t}\n"
            }
            flush()
        }

        // Sets and maps with their elements.
        let clusterIPs = (0..<w.services).map { "\(Workload.clusterIP($0))" }
        out += set("cluster-ips", type: "ipv4_addr", comment: "Active ClusterIPs", elements: clusterIPs)
        out += set("nodeport-ips", type: "ipv4_addr", comment: "IPs that accept NodePort traffic", elements: [])
        out += set("no-endpoint-services", type: "ipv4_addr . inet_proto . inet_service : verdict",
                   comment: "vmap to drop or reject packets to services with no endpoints", elements: [], map: true)
        out += set("no-endpoint-nodeports", type: "inet_proto . inet_service : verdict",
                   comment: "vmap to drop or reject packets to service nodeports with no endpoints", elements: [], map: true)
        out += set("firewall-ips", type: "ipv4_addr . inet_proto . inet_service : verdict",
                   comment: "destinations that are subject to LoadBalancerSourceRanges", elements: [], map: true)
        flush()
        let serviceIPs = (0..<w.services).map {
            "\(Workload.clusterIP($0)) . tcp . \(Workload.servicePort) : goto \(serviceChain($0))"
        }
        out += set("service-ips", type: "ipv4_addr . inet_proto . inet_service : verdict",
                   comment: "ClusterIP, ExternalIP and LoadBalancer IP traffic", elements: serviceIPs, map: true)
        flush()
        let nodePorts = (0..<w.services).compactMap { index in
            w.nodePort(index).map { "tcp . \($0) : goto \(externalChain(index))" }
        }
        out += set("service-nodeports", type: "inet_proto . inet_service : verdict",
                   comment: "NodePort traffic", elements: nodePorts, map: true)
        out += "}\n"
        flush(force: true)
    }

    private func set(_ name: String, type: String, comment: String, elements: [String], map: Bool = false) -> String {
        var out = "\t\(map ? "map" : "set") \(name) {\n\t\ttype \(type)\n\t\tcomment \"\(comment)\"\n"
        if !elements.isEmpty {
            out += "\t\telements = { " + elements.joined(separator: ",\n\t\t\t     ") + " }\n"
        }
        out += "\t}\n"
        return out
    }

    /// `ns/name/tcp/port`, the service port name kube-proxy puts in chain names.
    private func servicePortName(_ index: Int) -> String {
        let name = Workload.serviceName(index)
        return "\(name.namespace)/\(name.name)/tcp/\(Workload.portName)"
    }

    func serviceChain(_ index: Int) -> String {
        let base = servicePortName(index)
        return "service-\(Self.hash(base))-\(base)"
    }

    func externalChain(_ index: Int) -> String {
        let base = servicePortName(index)
        return "external-\(Self.hash(base))-\(base)"
    }

    func endpointChain(_ index: Int, _ address: IPAddress) -> String {
        let base = "\(servicePortName(index))__\(address)/\(Workload.targetPort)"
        return "endpoint-\(Self.hash(base))-\(base)"
    }

    /// 8 base32 characters of a 64-bit FNV-1a hash (kube-proxy uses a truncated SHA-256;
    /// only the length of the name matters here).
    static func hash(_ text: String) -> String {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            value ^= UInt64(byte)
            value &*= 0x0000_0100_0000_01b3
        }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var out = ""
        for i in 0..<8 {
            out.append(alphabet[Int((value >> UInt64(i * 5)) & 31)])
        }
        return out
    }

    private func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}
