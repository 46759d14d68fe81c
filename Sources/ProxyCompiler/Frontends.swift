import ServiceModel

/// One (address, protocol, port) — or (protocol, NodePort) — that a service answers on in one
/// family. Which frontends a service claims, and which service keeps a frontend claimed twice,
/// is decided by ``ServiceModel/FrontendClaims``, the rule the input decoder uses too.
struct Frontend: Hashable {
    /// What kind of address it answers on; decides masquerading.
    var kind: FrontendKind
    /// nil for NodePorts, which answer on the node's own addresses.
    var address: IPAddress?
    var transport: TransportProtocol
    var port: UInt16
    var service: ServiceName
    /// The index in `spec.ports` of the service port it serves (named in conflict warnings).
    var portIndex: Int
    /// The service port's name ("" for the single unnamed port).
    var portName: String = ""
    /// Endpoints chosen for this frontend, in a stable order.
    var endpoints: [Endpoint]
    /// With a traffic policy Local for this frontend (internal for a ClusterIP, external
    /// otherwise): the endpoints on this node, chosen alike; nil with policy Cluster.
    var local: [Endpoint]? = nil
    /// A LoadBalancer IP of a service with loadBalancerSourceRanges: the ranges of this family
    /// allowed to reach it; empty: any source.
    var sourceRanges: [CIDR] = []
    /// sessionAffinity ClientIP: how long a client keeps its endpoint, in seconds; nil: none.
    var affinityTimeout: UInt32? = nil
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

extension Frontend {
    var key: FrontendKey { FrontendKey(address: address, transport: transport, port: port) }
}

/// The frontends one service claims in one family, in the order ``FrontendClaims`` gives.
/// `node` decides which endpoints are local for the traffic policies Local; `node` and
/// `zone` which topology hints apply.
func frontends(of service: Service, family: IPFamily, node: String? = nil, zone: String? = nil) -> [Frontend] {
    var endpointsByPort: [Int: (cluster: [Endpoint], policy: LocalPolicyEndpoints)] = [:]
    let ranges = service.loadBalancerSourceRanges.filter { $0.family == family }
    return FrontendClaims.claims(of: service, family: family).map { claim in
        let port = service.ports[claim.portIndex]
        let lists = endpointsByPort[claim.portIndex] ?? {
            let chosen = (preferringClose(usableEndpoints(port.endpoints, family: family), node: node, zone: zone),
                          LocalPolicyEndpoints(service: service, port: port, family: family, node: node))
            endpointsByPort[claim.portIndex] = chosen
            return chosen
        }()
        var frontend = Frontend(kind: claim.kind, address: claim.key.address, transport: claim.key.transport,
                                port: claim.key.port, service: service.name, portIndex: claim.portIndex,
                                portName: port.name, endpoints: lists.cluster,
                                affinityTimeout: service.sessionAffinityTimeout)
        switch claim.kind {
        case .clusterIP:
            frontend.local = lists.policy.internal
        case .external:
            frontend.local = lists.policy.external
            // loadBalancerSourceRanges filter LoadBalancer IPs only.
            if let address = claim.key.address, !service.externalIPs.contains(address) { frontend.sourceRanges = ranges }
        case .nodePort:
            frontend.local = lists.policy.external
        }
        return frontend
    }
}

/// The warning for a frontend claimed by two services.
func conflictWarning(_ frontend: Frontend, keptBy owner: ServiceName) -> Diagnostic {
    FrontendClaims.conflict(FrontendClaim(kind: frontend.kind, key: frontend.key, portIndex: frontend.portIndex),
                            loser: frontend.service, owner: owner)
}

/// All frontends of the service map in one family, each served for the service that
/// ``FrontendClaims`` gives it, and a warning for each conflict.
func frontends(of map: ServiceMap, family: IPFamily, node: String? = nil,
               zone: String? = nil) -> (frontends: [Frontend], warnings: [Diagnostic]) {
    var result: [Frontend] = []
    var warnings: [Diagnostic] = []
    var owners: [FrontendKey: Int] = [:]  // index in result
    owners.reserveCapacity(map.services.count)
    for service in map.services {
        for frontend in frontends(of: service, family: family, node: node, zone: zone) {
            guard let index = owners[frontend.key] else {
                owners[frontend.key] = result.count
                result.append(frontend)
                continue
            }
            let owner = result[index].service
            guard owner != frontend.service else { continue }
            if FrontendClaims.wins(frontend.service, over: owner) {
                warnings.append(conflictWarning(result[index], keptBy: frontend.service))
                result[index] = frontend
            } else {
                warnings.append(conflictWarning(frontend, keptBy: owner))
            }
        }
    }
    return (result, warnings)
}
