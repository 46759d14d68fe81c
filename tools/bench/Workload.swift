import ServiceModel

/// The deterministic benchmark workload: `services` ClusterIP services, each with one TCP
/// port 80 served by `endpoints` ready endpoints on port 8080.
///
/// Addresses come from the benchmark ranges only: ClusterIPs from 198.18.0.0/15,
/// endpoints from 100.64.0.0/10 (the cluster CIDR of the benchmark node). Host parts
/// .0 and .255 are skipped. Service `i` is `bench/svc-<i, 5 digits>`, so the services
/// sort in index order, and its endpoints are the global indices
/// `i * endpoints ..< (i + 1) * endpoints`. The first `nodePorts` services (at most
/// 2,000) also get a NodePort, 30000 + i.
///
/// Endpoint `k` runs on node `node-<k mod nodes>`, and the benchmark programs `node-0`, as
/// in a cluster where pods are spread over `nodes` nodes: only the endpoints on node-0 can
/// be hairpin traffic (`hairpin-endpoints`). With `nodes` 0 endpoints carry no node name,
/// so every one of them may be local: the worst case.
struct Workload: Sendable {
    var services: Int
    var endpoints: Int
    var nodePorts: Int = 0
    var nodes: Int = 0
    /// Traffic policies: service `i` with `i % 10 == 1` has externalTrafficPolicy Local and
    /// an externalIP (from 198.19.128.0/17), `i % 10 == 2` internalTrafficPolicy Local,
    /// `i % 10 == 3` sessionAffinity ClientIP (default timeout).
    var trafficPolicies = false
    /// Per-endpoint counters in the programmed tables (`NodeConfig/endpointCounters`).
    var endpointCounters = true

    static let namespace = "bench"
    static let portName = "http"
    static let servicePort: UInt16 = 80
    static let targetPort: UInt16 = 8080
    static let firstNodePort = 30000
    static let maximumNodePorts = 2000
    /// The pod network of the benchmark node: the endpoint range.
    static let clusterCIDR = CIDR("100.64.0.0/10")!
    /// The service range kube-proxy's "drop traffic to unallocated ClusterIPs" rule uses.
    static let serviceCIDR = CIDR("198.18.0.0/15")!
    /// Usable host addresses per /24 (.1 ... .254).
    static let hostsPerBlock = 254
    /// Endpoint indices from here on are never used by the initial workload: replacements
    /// (100.64.0.0/10 holds 16,384 × 254 = 4,161,536 indices).
    static let replacementBase = 3_500_000
    /// 198.18.0.0/15 holds 512 × 254 ClusterIPs.
    static var maximumServices: Int { (1 << 17) / 256 * hostsPerBlock }

    func validate() -> String? {
        if services < 1 || services > Self.maximumServices { return "--services must be 1...\(Self.maximumServices)" }
        if endpoints < 1 || endpoints > 256 { return "--endpoints must be 1...256" }
        if services * endpoints >= Self.replacementBase { return "too many endpoints in total (at most \(Self.replacementBase - 1))" }
        if nodes < 0 { return "--nodes must be 0 or more" }
        if nodePorts < 0 || nodePorts > min(services, Self.maximumNodePorts) {
            return "--node-ports must be 0...\(min(services, Self.maximumNodePorts))"
        }
        return nil
    }

    /// `base + index`, counting only host addresses .1 ... .254 of each /24.
    static func address(base: [UInt8], index: Int) -> IPAddress {
        let block = index / hostsPerBlock
        let host = index % hostsPerBlock + 1
        let value = (UInt32(base[0]) << 24 | UInt32(base[1]) << 16 | UInt32(base[2]) << 8 | UInt32(base[3]))
            + UInt32(block) << 8 + UInt32(host)
        return IPAddress(bytes: [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff),
                                 UInt8(value & 0xff)])!
    }

    static func clusterIP(_ service: Int) -> IPAddress { address(base: [198, 18, 0, 0], index: service) }
    static func endpointIP(_ index: Int) -> IPAddress { address(base: [100, 64, 0, 0], index: index) }

    static func serviceName(_ service: Int) -> ServiceName {
        let digits = String(service)
        return ServiceName(namespace: namespace, name: "svc-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits)
    }

    func nodePort(_ service: Int) -> UInt16? {
        service < nodePorts ? UInt16(Self.firstNodePort + service) : nil
    }

    func endpointAddresses(_ service: Int) -> [IPAddress] {
        (0..<endpoints).map { Self.endpointIP(service * endpoints + $0) }
    }

    /// The node endpoint `k` (global index) runs on; nil without nodes.
    func nodeName(ofEndpoint index: Int) -> String? {
        nodes > 0 ? "node-\(index % nodes)" : nil
    }

    func service(_ index: Int) -> Service {
        let endpoints = endpointAddresses(index).enumerated().map { offset, address in
            Endpoint(address: address, port: Self.targetPort, nodeName: nodeName(ofEndpoint: index * self.endpoints + offset))
        }
        var service = Service(name: Self.serviceName(index), clusterIPs: [Self.clusterIP(index)],
                              ports: [ServicePort(name: Self.portName, transport: .tcp, port: Self.servicePort,
                                                  nodePort: nodePort(index), endpoints: endpoints)])
        if trafficPolicies && index % 10 == 1 {
            service.externalTrafficPolicy = .local
            service.externalIPs = [Self.address(base: [198, 19, 128, 0], index: index / 10)]
        }
        if trafficPolicies && index % 10 == 2 { service.internalTrafficPolicy = .local }
        if trafficPolicies && index % 10 == 3 { service.sessionAffinityTimeout = 10800 }
        return service
    }

    func serviceMap() -> ServiceMap {
        ServiceMap(services: (0..<services).map(service))
    }

    /// The node the benchmark programs: `node-0`, pods in 100.64.0.0/10, endpoint counters as
    /// asked, everything else default.
    var node: NodeConfig {
        NodeConfig(nodeName: "node-0", clusterCIDRs: [Self.clusterCIDR], endpointCounters: endpointCounters)
    }
}
