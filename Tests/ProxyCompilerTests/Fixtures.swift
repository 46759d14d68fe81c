import ServiceModel

/// Representative services for golden tests, built directly in the model.
enum Fixtures {
    static func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    static func endpoints(_ addresses: [String], port: UInt16, node: String = "node-1") -> [Endpoint] {
        addresses.map { Endpoint(address: ip($0), port: port, nodeName: node) }
    }

    /// The classic echo-server: NodePort 32000, three replicas, named targetPort resolved to 8080.
    static let echoServer = Service(
        name: ServiceName(namespace: "default", name: "echo-server"),
        clusterIPs: [ip("198.18.0.10")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 32000,
                            endpoints: endpoints(["198.19.1.11", "198.19.1.12", "198.19.1.13"], port: 8080))])

    /// DNS-like: TCP and UDP on one port, two endpoints.
    static let dns = Service(
        name: ServiceName(namespace: "kube-system", name: "dns"),
        clusterIPs: [ip("198.18.0.53")],
        ports: [
            ServicePort(name: "dns", transport: .udp, port: 53, endpoints: endpoints(["198.19.1.21", "198.19.2.21"], port: 5353)),
            ServicePort(name: "dns-tcp", transport: .tcp, port: 53, endpoints: endpoints(["198.19.1.21", "198.19.2.21"], port: 5353)),
        ])

    /// LoadBalancer with an external IP and a LB ingress IP, dual-stack, SCTP port too.
    static let web = Service(
        name: ServiceName(namespace: "shop", name: "web"),
        clusterIPs: [ip("198.18.0.20"), ip("2001:db8:5::20")],
        externalIPs: [ip("203.0.113.7")],
        loadBalancerIPs: [ip("203.0.113.8"), ip("2001:db8:203::8")],
        ports: [
            ServicePort(name: "https", transport: .tcp, port: 443, nodePort: 30443,
                        endpoints: endpoints(["198.19.1.31", "198.19.2.31", "2001:db8:1:1::31"], port: 8443)),
            ServicePort(name: "sig", transport: .sctp, port: 9999,
                        endpoints: endpoints(["198.19.1.31"], port: 9999)),
        ])

    /// No endpoints at all: its frontends are rejected.
    static let empty = Service(
        name: ServiceName(namespace: "default", name: "empty"),
        clusterIPs: [ip("198.18.0.99")],
        ports: [ServicePort(name: "", transport: .tcp, port: 80, nodePort: 30080)])

    /// Only terminating-but-serving endpoints: those are used.
    static let draining = Service(
        name: ServiceName(namespace: "default", name: "draining"),
        clusterIPs: [ip("198.18.0.77")],
        ports: [ServicePort(name: "", transport: .tcp, port: 80, endpoints: [
            Endpoint(address: ip("198.19.1.41"), port: 80, ready: false, serving: true, terminating: true),
            Endpoint(address: ip("198.19.1.42"), port: 80, ready: false, serving: false, terminating: true),
        ])])

    /// externalTrafficPolicy Local, LoadBalancer: two endpoints on this node, one elsewhere.
    static let localLoadBalancer = Service(
        name: ServiceName(namespace: "shop", name: "local-lb"),
        clusterIPs: [ip("198.18.0.30")], loadBalancerIPs: [ip("203.0.113.30")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 30030,
                            endpoints: endpoints(["198.19.1.51", "198.19.1.52"], port: 8080)
                                + endpoints(["198.19.2.51"], port: 8080, node: "node-2"))],
        externalTrafficPolicy: .local)

    /// externalTrafficPolicy Local with every endpoint on another node: external traffic dropped.
    static let remoteOnly = Service(
        name: ServiceName(namespace: "shop", name: "remote-only"),
        clusterIPs: [ip("198.18.0.31")], externalIPs: [ip("203.0.113.31")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 30031,
                            endpoints: endpoints(["198.19.2.61", "198.19.2.62"], port: 8080, node: "node-2"))],
        externalTrafficPolicy: .local)

    /// externalTrafficPolicy Local during a rolling update: the local endpoint is terminating
    /// (still serving), the ready one is elsewhere; each list falls back on its own.
    static let rollingLocal = Service(
        name: ServiceName(namespace: "shop", name: "rolling"),
        clusterIPs: [ip("198.18.0.32")], loadBalancerIPs: [ip("203.0.113.32")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, endpoints: [
            Endpoint(address: ip("198.19.1.71"), port: 8080, ready: false, serving: true, terminating: true, nodeName: "node-1"),
            Endpoint(address: ip("198.19.2.71"), port: 8080, nodeName: "node-2"),
        ])],
        externalTrafficPolicy: .local)

    /// internalTrafficPolicy Local: one endpoint here, two elsewhere.
    static let internalLocal = Service(
        name: ServiceName(namespace: "kube-system", name: "node-cache"),
        clusterIPs: [ip("198.18.0.33"), ip("2001:db8:5::33")],
        ports: [ServicePort(name: "dns", transport: .udp, port: 53,
                            endpoints: endpoints(["198.19.1.81", "2001:db8:1:1::81"], port: 5353)
                                + endpoints(["198.19.2.81", "198.19.3.81"], port: 5353, node: "node-2"))],
        internalTrafficPolicy: .local)

    /// internalTrafficPolicy Local with no endpoint here: ClusterIP traffic dropped.
    static let internalElsewhere = Service(
        name: ServiceName(namespace: "kube-system", name: "elsewhere"),
        clusterIPs: [ip("198.18.0.34")],
        ports: [ServicePort(name: "", transport: .tcp, port: 80,
                            endpoints: endpoints(["198.19.2.91"], port: 80, node: "node-2"))],
        internalTrafficPolicy: .local)

    static let node: NodeConfig = {
        var node = NodeConfig(nodeName: "node-1", nodeIPs: [ip("192.0.2.10")],
                              clusterCIDRs: [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])
        node.zone = "zone-a"
        return node
    }()

    /// LoadBalancer with loadBalancerSourceRanges: one range inside another (left out), one
    /// holding the node's address (the LB IP itself allowed too), an IPv6 one; its externalIP
    /// and NodePort are not filtered.
    static let rangedLB = Service(
        name: ServiceName(namespace: "shop", name: "ranged"),
        clusterIPs: [ip("198.18.0.50")], externalIPs: [ip("203.0.113.51")], loadBalancerIPs: [ip("203.0.113.50")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 30050,
                            endpoints: endpoints(["198.19.1.61", "198.19.2.61"], port: 8080)),
                ServicePort(name: "dns", transport: .udp, port: 53, endpoints: endpoints(["198.19.1.61"], port: 5353))],
        loadBalancerSourceRanges: [CIDR("198.51.100.0/24")!, CIDR("198.51.100.128/25")!, CIDR("192.0.2.0/24")!,
                                   CIDR("2001:db8:9::/48")!])

    /// externalTrafficPolicy Local with a source range: checked first, then the Local policy.
    static let rangedLocal = Service(
        name: ServiceName(namespace: "shop", name: "ranged-local"),
        clusterIPs: [ip("198.18.0.52")], loadBalancerIPs: [ip("203.0.113.52")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, endpoints: endpoints(["198.19.1.62"], port: 8080))],
        externalTrafficPolicy: .local, loadBalancerSourceRanges: [CIDR("203.0.113.0/25")!])

    /// Zone hints on every endpoint: two for zone-a (this node's), one for zone-b.
    static let zoned = Service(
        name: ServiceName(namespace: "shop", name: "zoned"),
        clusterIPs: [ip("198.18.0.40")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, endpoints: [
            Endpoint(address: ip("198.19.1.91"), port: 8080, nodeName: "node-1", zone: "zone-a", zoneHints: ["zone-a"]),
            Endpoint(address: ip("198.19.2.91"), port: 8080, nodeName: "node-2", zone: "zone-a", zoneHints: ["zone-a"]),
            Endpoint(address: ip("198.19.3.91"), port: 8080, nodeName: "node-3", zone: "zone-b", zoneHints: ["zone-b"]),
        ])])

    /// Zone hints on only some endpoints: ignored, every endpoint used.
    static let partlyZoned = Service(
        name: ServiceName(namespace: "shop", name: "partly-zoned"),
        clusterIPs: [ip("198.18.0.41")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, endpoints: [
            Endpoint(address: ip("198.19.1.92"), port: 8080, nodeName: "node-1", zone: "zone-a", zoneHints: ["zone-a"]),
            Endpoint(address: ip("198.19.3.92"), port: 8080, nodeName: "node-3", zone: "zone-b"),
        ])])

    /// Node hints (PreferSameNode) on every endpoint: the one for node-1.
    static let sameNode = Service(
        name: ServiceName(namespace: "shop", name: "same-node"),
        clusterIPs: [ip("198.18.0.42")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, endpoints: [
            Endpoint(address: ip("198.19.1.93"), port: 8080, nodeName: "node-1", zoneHints: ["zone-a"], nodeHints: ["node-1"]),
            Endpoint(address: ip("198.19.2.93"), port: 8080, nodeName: "node-2", zoneHints: ["zone-a"], nodeHints: ["node-2"]),
        ])])

    /// sessionAffinity ClientIP (timeout 600 s) on a dual-stack LoadBalancer with a NodePort,
    /// an external IP and two ports.
    static let sticky = Service(
        name: ServiceName(namespace: "shop", name: "sticky"),
        clusterIPs: [ip("198.18.0.60"), ip("2001:db8:5::60")],
        externalIPs: [ip("203.0.113.61")], loadBalancerIPs: [ip("203.0.113.60")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 30060,
                            endpoints: endpoints(["198.19.1.81", "198.19.2.81", "2001:db8:1:1::81"], port: 8080)),
                ServicePort(name: "dns", transport: .udp, port: 53, endpoints: endpoints(["198.19.1.81"], port: 5353))],
        sessionAffinityTimeout: 600)

    /// sessionAffinity ClientIP (default timeout) with externalTrafficPolicy Local and
    /// loadBalancerSourceRanges: the affinity chains sit behind both.
    static let stickyLocal = Service(
        name: ServiceName(namespace: "shop", name: "sticky-local"),
        clusterIPs: [ip("198.18.0.62")], loadBalancerIPs: [ip("203.0.113.62")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 30062,
                            endpoints: endpoints(["198.19.1.82"], port: 8080) + endpoints(["198.19.2.82"], port: 8080, node: "node-2"))],
        externalTrafficPolicy: .local, sessionAffinityTimeout: 10800, loadBalancerSourceRanges: [CIDR("192.0.2.0/24")!])
}
