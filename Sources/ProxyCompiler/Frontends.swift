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
}

/// Picks the endpoints kube-proxy would use: the ready ones; when none is ready, the
/// ones that are serving while terminating. Only addresses of the wanted family count.
func usableEndpoints(_ endpoints: [Endpoint], family: IPFamily) -> [Endpoint] {
    struct Target: Hashable { var address: IPAddress; var port: UInt16 }
    let ofFamily = endpoints.filter { $0.address.family == family }
    var seen = Set<Target>()
    func unique(_ list: [Endpoint]) -> [Endpoint] {
        list.filter { seen.insert(Target(address: $0.address, port: $0.port)).inserted }
            .sorted { ($0.address, $0.port) < ($1.address, $1.port) }
    }
    let ready = ofFamily.filter(\.ready)
    if !ready.isEmpty { return unique(ready) }
    return unique(ofFamily.filter { $0.serving && $0.terminating })
}

/// All frontends of the service map in one family, with duplicates removed (first
/// service by name wins) and a warning for each conflict.
func frontends(of map: ServiceMap, family: IPFamily) -> (frontends: [Frontend], warnings: [String]) {
    /// Identity of a frontend: (address or NodePort, protocol, port).
    struct Key: Hashable { var address: IPAddress?; var transport: TransportProtocol; var port: UInt16 }
    var result: [Frontend] = []
    var warnings: [String] = []
    var owners: [Key: ServiceName] = [:]

    func add(_ frontend: Frontend, description: @autoclosure () -> String) {
        let key = Key(address: frontend.address, transport: frontend.transport, port: frontend.port)
        if let owner = owners[key] {
            if owner != frontend.service {
                warnings.append("\(description()) is claimed by both \(owner) and \(frontend.service); \(owner) keeps it")
            }
            return
        }
        owners[key] = frontend.service
        result.append(frontend)
    }

    for service in map.services {
        // A service serves a family only if it has a ClusterIP of that family.
        guard service.clusterIPs.contains(where: { $0.family == family }) else { continue }
        for port in service.ports {
            let endpoints = usableEndpoints(port.endpoints, family: family)
            let proto = port.transport
            for ip in service.clusterIPs where ip.family == family {
                add(Frontend(kind: .clusterIP, address: ip, transport: proto, port: port.port,
                             service: service.name, endpoints: endpoints),
                    description: "\(ip) \(proto)/\(port.port)")
            }
            for ip in service.externalIPs + service.loadBalancerIPs where ip.family == family {
                add(Frontend(kind: .external, address: ip, transport: proto, port: port.port,
                             service: service.name, endpoints: endpoints),
                    description: "\(ip) \(proto)/\(port.port)")
            }
            if let nodePort = port.nodePort {
                add(Frontend(kind: .nodePort, address: nil, transport: proto, port: nodePort,
                             service: service.name, endpoints: endpoints),
                    description: "NodePort \(proto)/\(nodePort)")
            }
        }
    }
    return (result, warnings)
}
