import ServiceModel

/// What kind of address a frontend answers on; decides masquerading.
enum FrontendKind: Hashable {
    case clusterIP
    case external
    case nodePort
}

/// One (address, protocol, port) — or (protocol, NodePort) — that a service answers on in one family.
struct Frontend: Hashable {
    var kind: FrontendKind
    /// nil for NodePorts, which answer on the node's own addresses.
    var address: IPAddress?
    var transport: TransportProtocol
    var port: UInt16
    var service: ServiceName
    /// Endpoints chosen for this frontend, in a stable order.
    var endpoints: [Endpoint]
    /// With a traffic policy Local for this frontend (internal for a ClusterIP, external
    /// otherwise): the endpoints on this node, chosen alike; nil with policy Cluster.
    var local: [Endpoint]? = nil
    /// A LoadBalancer IP of a service with loadBalancerSourceRanges: the ranges of this family
    /// allowed to reach it; empty: any source.
    var sourceRanges: [CIDR] = []
}

/// Picks the endpoints kube-proxy would use: the ready ones; when none is ready, the
/// ones that are serving while terminating. Only addresses of the wanted family count.
func usableEndpoints(_ endpoints: [Endpoint], family: IPFamily) -> [Endpoint] {
    /// Sorted by (address, port), one endpoint per (address, port): the first listed.
    func unique(_ list: [Endpoint]) -> [Endpoint] {
        // A stable sort keeps equal targets in listed order; then drop repeats.
        let sorted = list.enumerated().sorted { ($0.element.address, $0.element.port, $0.offset)
            < ($1.element.address, $1.element.port, $1.offset) }.map(\.element)
        var result: [Endpoint] = []
        result.reserveCapacity(sorted.count)
        for endpoint in sorted where result.last.map({ $0.address != endpoint.address || $0.port != endpoint.port }) ?? true {
            result.append(endpoint)
        }
        return result
    }
    let ofFamily = endpoints.filter { $0.address.family == family }
    let ready = ofFamily.filter(\.ready)
    if !ready.isEmpty { return unique(ready) }
    return unique(ofFamily.filter { $0.serving && $0.terminating })
}

/// Identity of a frontend: (address or NodePort, protocol, port). Two frontends with the
/// same key cannot both be served; the service whose name sorts first keeps it.
struct FrontendKey: Hashable {
    var address: IPAddress?
    var transport: TransportProtocol
    var port: UInt16
}

extension Frontend {
    var key: FrontendKey { FrontendKey(address: address, transport: transport, port: port) }

    /// How a conflict over this frontend is described.
    var conflictDescription: String {
        if let address { return "\(address) \(transport)/\(port)" }
        return "NodePort \(transport)/\(port)"
    }
}

/// The frontends one service claims in one family, in a stable order (ports in declaration
/// order; per port its ClusterIPs, then externalIPs and LB IPs, then its NodePort).
/// A service serves a family only if it has a ClusterIP of that family.
/// `node` decides which endpoints are local for the traffic policies Local; `node` and
/// `zone` which topology hints apply.
func frontends(of service: Service, family: IPFamily, node: String? = nil, zone: String? = nil) -> [Frontend] {
    guard service.clusterIPs.contains(where: { $0.family == family }) else { return [] }
    var result: [Frontend] = []
    for port in service.ports {
        let endpoints = preferringClose(usableEndpoints(port.endpoints, family: family), node: node, zone: zone)
        let proto = port.transport
        let policy = LocalPolicyEndpoints(service: service, port: port, family: family, node: node)
        for ip in service.clusterIPs where ip.family == family {
            result.append(Frontend(kind: .clusterIP, address: ip, transport: proto, port: port.port,
                                   service: service.name, endpoints: endpoints, local: policy.internal))
        }
        let ranges = service.loadBalancerSourceRanges.filter { $0.family == family }
        for ip in service.externalIPs + service.loadBalancerIPs where ip.family == family {
            let isBalancer = !service.externalIPs.contains(ip)
            result.append(Frontend(kind: .external, address: ip, transport: proto, port: port.port,
                                   service: service.name, endpoints: endpoints, local: policy.external,
                                   sourceRanges: isBalancer ? ranges : []))
        }
        if let nodePort = port.nodePort {
            result.append(Frontend(kind: .nodePort, address: nil, transport: proto, port: nodePort,
                                   service: service.name, endpoints: endpoints, local: policy.external))
        }
    }
    return result
}

/// The warning for a frontend claimed by two services.
func conflictWarning(_ frontend: Frontend, keptBy owner: ServiceName) -> String {
    "\(frontend.conflictDescription) is claimed by both \(owner) and \(frontend.service); \(owner) keeps it"
}

/// All frontends of the service map in one family, with duplicates removed (first
/// service by name wins) and a warning for each conflict.
func frontends(of map: ServiceMap, family: IPFamily, node: String? = nil,
               zone: String? = nil) -> (frontends: [Frontend], warnings: [String]) {
    var result: [Frontend] = []
    var warnings: [String] = []
    var owners: [FrontendKey: ServiceName] = [:]
    owners.reserveCapacity(map.services.count)
    for service in map.services {
        for frontend in frontends(of: service, family: family, node: node, zone: zone) {
            if let owner = owners[frontend.key] {
                if owner != frontend.service { warnings.append(conflictWarning(frontend, keptBy: owner)) }
                continue
            }
            owners[frontend.key] = frontend.service
            result.append(frontend)
        }
    }
    return (result, warnings)
}
