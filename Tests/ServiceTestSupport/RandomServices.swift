import ServiceModel

/// A reproducible stream of service maps for checking incremental compilation against a
/// full one: small address and port pools, so that conflicts (two services claiming one
/// NodePort or ClusterIP), shared endpoints, shared ClusterIPs and bucket changes all happen.
public struct RandomServices {
    private var state: UInt64

    public init(seed: UInt64) { state = seed &* 6364136223846793005 &+ 1442695040888963407 }

    /// Next number in 0..<bound (a 64-bit LCG; good enough to pick test cases).
    public mutating func next(_ bound: Int) -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int((state >> 33) % UInt64(bound))
    }

    public mutating func chance(_ percent: Int) -> Bool { next(100) < percent }

    public mutating func endpoint(nodes: [String?]) -> Endpoint {
        let v6 = chance(20)
        let address = v6 ? IPAddress("2001:db8:1::\(next(12) + 1)")! : IPAddress("198.19.\(next(2) + 1).\(next(12) + 1)")!
        return Endpoint(address: address, port: UInt16(8080 + next(2)), ready: !chance(10),
                        serving: true, terminating: chance(10), nodeName: nodes[next(nodes.count)])
    }

    /// `endpoint(nodes:)` with topology hints mostly: some ports get them on every endpoint, some not.
    public mutating func hintedEndpoint(nodes: [String?]) -> Endpoint {
        var endpoint = endpoint(nodes: nodes)
        if chance(80) { endpoint.zoneHints = [["zone-a", "zone-b"][next(2)]] }
        if chance(30) { endpoint.nodeHints = [["node-1", "node-2"][next(2)]] }
        return endpoint
    }

    public mutating func service(_ index: Int) -> Service {
        let nodes: [String?] = ["node-1", "node-2", nil]
        var clusterIPs = [IPAddress("198.18.0.\(next(8) + 1)")!]
        if chance(30) { clusterIPs.append(IPAddress("2001:db8:5::\(next(8) + 1)")!) }
        var ports: [ServicePort] = []
        for portIndex in 0..<(next(2) + 1) {
            let transport: TransportProtocol = chance(30) ? .udp : .tcp
            let endpoints = (0..<next(5)).map { _ in hintedEndpoint(nodes: nodes) }
            ports.append(ServicePort(name: "p\(portIndex)", transport: transport, port: UInt16(80 + next(3)),
                                     nodePort: chance(40) ? UInt16(30000 + next(4)) : nil, endpoints: endpoints))
        }
        return Service(name: ServiceName(namespace: "ns", name: "svc-\(index)"), clusterIPs: clusterIPs,
                       // Sometimes another service's ClusterIP: a conflict between kinds of frontend.
                       externalIPs: chance(20) ? [IPAddress(chance(25) ? "198.18.0.\(next(8) + 1)" : "203.0.113.\(next(3) + 1)")!] : [],
                       loadBalancerIPs: chance(10) ? [IPAddress("2001:db8:203::\(next(2) + 1)")!] : [],
                       ports: ports,
                       externalTrafficPolicy: chance(30) ? .local : .cluster,
                       internalTrafficPolicy: chance(20) ? .local : .cluster,
                       // A few distinct timeouts: refresh chains shared and dropped.
                       sessionAffinityTimeout: chance(30) ? [10800, 60, 2][next(3)] : nil,
                       // Sometimes nested or shared between services; IPv4 ones never apply (no IPv4 LB IPs).
                       loadBalancerSourceRanges: chance(40) ? ["2001:db8:9::/48", "2001:db8:9:1::/64", "198.51.100.0/24",
                                                               "2001:db8:a::/64"].filter { _ in chance(50) }.map { CIDR($0)! } : [])
    }

    /// A map of up to `size` services.
    public mutating func map(size: Int) -> ServiceMap {
        ServiceMap(services: (0..<size).filter { _ in chance(70) }.map { service($0) })
    }

    /// `map` with a few services added, replaced, changed in one endpoint, or removed.
    public mutating func mutate(_ map: ServiceMap, size: Int) -> ServiceMap {
        var services = Dictionary(uniqueKeysWithValues: map.services.map { ($0.name.name, $0) })
        for _ in 0..<(next(3) + 1) {
            let index = next(size)
            let name = "svc-\(index)"
            switch next(4) {
            case 0: services[name] = nil
            case 1: services[name] = service(index)
            default:
                guard var existing = services[name], !existing.ports.isEmpty else { services[name] = service(index); continue }
                let port = next(existing.ports.count)
                if chance(15) {
                    existing.externalTrafficPolicy = existing.externalTrafficPolicy == .local ? .cluster : .local
                } else if chance(10) {
                    existing.internalTrafficPolicy = existing.internalTrafficPolicy == .local ? .cluster : .local
                } else if chance(10) {
                    existing.sessionAffinityTimeout = existing.sessionAffinityTimeout == nil ? [10800, 60][next(2)] : nil
                } else if !existing.ports[port].endpoints.isEmpty, chance(50) {
                    existing.ports[port].endpoints.remove(at: next(existing.ports[port].endpoints.count))
                } else {
                    existing.ports[port].endpoints.append(endpoint(nodes: ["node-1", "node-2", nil]))
                }
                services[name] = existing
            }
        }
        return ServiceMap(services: Array(services.values))
    }
}
