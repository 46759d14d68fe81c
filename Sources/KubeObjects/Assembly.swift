import ServiceModel

/// Joins decoded Services and EndpointSlices into the final services, folds repeated
/// addresses within a service, and reports the conflicts no single object shows: frontends
/// and NodePorts claimed by two services, as ``ServiceModel/FrontendClaims`` decides them
/// (the compiler applies the same rule; the services keep their frontends here).
///
/// Every decision is deterministic: services are visited sorted by `namespace/name`, slices
/// by name.
struct Assembly {
    /// The result, sorted by name.
    private(set) var services: [Service]
    private(set) var warnings: [Diagnostic] = []
    private let slicesByService: [ServiceName: [EndpointSlice]]

    /// `slices` must be sorted by `namespace/name`.
    init(services: [Service], slices: [EndpointSlice]) {
        self.services = services.sorted { $0.name < $1.name }
        self.slicesByService = Dictionary(grouping: slices, by: \.service)
    }

    mutating func run() {
        attachAllEndpoints()
        foldOwnAddresses()
        warnings += FrontendClaims.conflicts(in: services)
    }

    // MARK: Endpoints

    /// Attaches the endpoints of every service, without resolving conflicts between services.
    mutating func attachAllEndpoints() {
        for index in services.indices {
            Self.attachEndpoints(&services[index], from: slicesByService)
        }
    }

    private struct EndpointKey: Hashable {
        var address: IPAddress
        var port: UInt16
    }

    /// For each service port: the endpoints of every slice port with the same name and
    /// protocol, deduplicated by address and port (the first wins, unless a later one is ready
    /// and it is not), sorted by address and port.
    /// Static, so that the call does not copy `self` (and with it every service) per service.
    private static func attachEndpoints(_ service: inout Service, from slicesByService: [ServiceName: [EndpointSlice]]) {
        let slices = slicesByService[service.name] ?? []
        for portIndex in service.ports.indices {
            let servicePort = service.ports[portIndex]
            var endpoints: [Endpoint] = []
            var positions: [EndpointKey: Int] = [:]
            for slice in slices {
                for slicePort in slice.ports
                where slicePort.name == servicePort.name && slicePort.transport == servicePort.transport {
                    guard let number = slicePort.port else { continue }
                    for member in slice.endpoints {
                        let endpoint = Endpoint(
                            address: member.address, port: number, ready: member.ready, serving: member.serving,
                            terminating: member.terminating, nodeName: member.nodeName, zone: member.zone,
                            zoneHints: member.zoneHints, nodeHints: member.nodeHints)
                        let key = EndpointKey(address: member.address, port: number)
                        if let position = positions[key] {
                            if !endpoints[position].ready && endpoint.ready { endpoints[position] = endpoint }
                        } else {
                            positions[key] = endpoints.count
                            endpoints.append(endpoint)
                        }
                    }
                }
            }
            endpoints.sort { ($0.address, $0.port) < ($1.address, $1.port) }
            service.ports[portIndex].endpoints = endpoints
        }
    }

    // MARK: Addresses within one service

    /// Each externalIP and load-balancer IP once per service, and none that is also the
    /// service's own clusterIP (or, for load-balancer IPs, its externalIP).
    mutating func foldOwnAddresses() {
        for index in services.indices {
            var service = services[index]
            let ownClusterIPs = Set(service.clusterIPs)
            var seen = Set<IPAddress>()
            service.externalIPs = service.externalIPs.filter { address in
                if ownClusterIPs.contains(address) {
                    warnings.append(Diagnostic(
                        .warning, .repeatedOwnAddress, object: .service(service.name), field: "spec.externalIPs",
                        message: "Service \(service.name): externalIP \(address) is also its clusterIP; ignoring the externalIP"))
                    return false
                }
                return seen.insert(address).inserted
            }
            let ownExternalIPs = seen
            seen = []
            service.loadBalancerIPs = service.loadBalancerIPs.filter { address in
                if ownClusterIPs.contains(address) || ownExternalIPs.contains(address) {
                    let other = ownClusterIPs.contains(address) ? "clusterIP" : "externalIP"
                    warnings.append(Diagnostic(
                        .warning, .repeatedOwnAddress, object: .service(service.name), field: "status.loadBalancer.ingress",
                        message: "Service \(service.name): load-balancer IP \(address) is also its \(other); ignoring the load-balancer IP"))
                    return false
                }
                return seen.insert(address).inserted
            }
            services[index] = service
        }
    }
}
