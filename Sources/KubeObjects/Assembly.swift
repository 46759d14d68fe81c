import ServiceModel

/// Joins decoded Services and EndpointSlices into the final services, and resolves the
/// conflicts no single object shows: frontends and NodePorts claimed by two services.
///
/// Every decision is deterministic: services are visited sorted by `namespace/name`, slices
/// by name, and the first claimant of a frontend keeps it.
struct Assembly {
    /// The result, sorted by name.
    private(set) var services: [Service]
    private(set) var warnings: [String] = []
    private let slicesByService: [ServiceName: [EndpointSlice]]

    /// `slices` must be sorted by `namespace/name`.
    init(services: [Service], slices: [EndpointSlice]) {
        self.services = services.sorted { $0.name < $1.name }
        self.slicesByService = Dictionary(grouping: slices, by: \.service)
    }

    mutating func run() {
        attachAllEndpoints()
        resolveAddressConflicts()
        resolveNodePortConflicts()
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

    // MARK: Address frontends

    /// A destination the proxy captures: address, protocol, port.
    private struct Frontend: Hashable {
        var address: IPAddress
        var transport: TransportProtocol
        var port: UInt16
    }

    /// ClusterIPs must be unique among services: a service whose clusterIP another service
    /// (sorting first) already uses is dropped. An externalIP or load-balancer IP whose
    /// address, protocol and port another frontend already serves is dropped from the later
    /// service. Duplicates within one service are folded silently or with a warning.
    private mutating func resolveAddressConflicts() {
        var clusterIPOwners: [IPAddress: ServiceName] = [:]
        var frontendOwners: [Frontend: ServiceName] = [:]
        var kept: [Service] = []

        func frontends(_ service: Service, _ address: IPAddress) -> [Frontend] {
            service.ports.map { Frontend(address: address, transport: $0.transport, port: $0.port) }
        }

        serviceLoop: for var service in services {
            // Within the service: each address once, and a clusterIP is not also external.
            let ownClusterIPs = Set(service.clusterIPs)
            var seen = Set<IPAddress>()
            service.externalIPs = service.externalIPs.filter { address in
                if ownClusterIPs.contains(address) {
                    warnings.append("Service \(service.name): externalIP \(address) is also its clusterIP; ignoring the externalIP")
                    return false
                }
                return seen.insert(address).inserted
            }
            let ownExternalIPs = seen
            seen = []
            service.loadBalancerIPs = service.loadBalancerIPs.filter { address in
                if ownClusterIPs.contains(address) || ownExternalIPs.contains(address) {
                    warnings.append("Service \(service.name): load-balancer IP \(address) is also its \(ownClusterIPs.contains(address) ? "clusterIP" : "externalIP"); ignoring the load-balancer IP")
                    return false
                }
                return seen.insert(address).inserted
            }

            // Against the services before it.
            for address in service.clusterIPs {
                if let owner = clusterIPOwners[address] {
                    warnings.append("Service \(service.name): clusterIP \(address) is also the clusterIP of Service \(owner); ignoring Service \(service.name)")
                    continue serviceLoop
                }
                if let (frontend, owner) = firstClaimed(frontends(service, address), in: frontendOwners) {
                    warnings.append("Service \(service.name): clusterIP \(describe(frontend)) is also a frontend of Service \(owner); ignoring Service \(service.name)")
                    continue serviceLoop
                }
            }
            service.externalIPs = service.externalIPs.filter { address in
                guard let (frontend, owner) = firstClaimed(frontends(service, address), in: frontendOwners) else {
                    return true
                }
                warnings.append("Service \(service.name): externalIP \(describe(frontend)) is also a frontend of Service \(owner); ignoring that externalIP for Service \(service.name)")
                return false
            }
            service.loadBalancerIPs = service.loadBalancerIPs.filter { address in
                guard let (frontend, owner) = firstClaimed(frontends(service, address), in: frontendOwners) else {
                    return true
                }
                warnings.append("Service \(service.name): load-balancer IP \(describe(frontend)) is also a frontend of Service \(owner); ignoring that load-balancer IP for Service \(service.name)")
                return false
            }

            for address in service.clusterIPs {
                clusterIPOwners[address] = service.name
            }
            for address in service.clusterIPs + service.externalIPs + service.loadBalancerIPs {
                for frontend in frontends(service, address) {
                    frontendOwners[frontend] = service.name
                }
            }
            kept.append(service)
        }
        services = kept
    }

    private func firstClaimed(_ frontends: [Frontend], in owners: [Frontend: ServiceName])
        -> (Frontend, ServiceName)? {
        for frontend in frontends {
            if let owner = owners[frontend] { return (frontend, owner) }
        }
        return nil
    }

    private func describe(_ frontend: Frontend) -> String {
        let address = frontend.address.family == .v6 ? "[\(frontend.address)]" : "\(frontend.address)"
        return "\(address):\(frontend.port)/\(frontend.transport.rawValue.uppercased())"
    }

    // MARK: NodePorts

    private struct NodePortKey: Hashable {
        var port: UInt16
        var transport: TransportProtocol
    }

    /// A (nodePort, protocol) pair serves one service port: the first claimant, in service
    /// order, keeps it; later ones lose their nodePort, with a warning naming both.
    private mutating func resolveNodePortConflicts() {
        var owners: [NodePortKey: (service: ServiceName, port: String)] = [:]
        for serviceIndex in services.indices {
            let name = services[serviceIndex].name
            for portIndex in services[serviceIndex].ports.indices {
                let port = services[serviceIndex].ports[portIndex]
                guard let nodePort = port.nodePort else { continue }
                let key = NodePortKey(port: nodePort, transport: port.transport)
                let label = "\(describe(port)) of Service \(name)"
                if let owner = owners[key] {
                    warnings.append("nodePort \(nodePort)/\(port.transport.rawValue.uppercased()) is claimed by \(owner.port) and by \(label); keeping it for Service \(owner.service), dropping it from Service \(name)")
                    services[serviceIndex].ports[portIndex].nodePort = nil
                } else {
                    owners[key] = (name, label)
                }
            }
        }
    }

    /// `port "http" (80/TCP)` or `port 80/TCP`.
    private func describe(_ port: ServicePort) -> String {
        let number = "\(port.port)/\(port.transport.rawValue.uppercased())"
        return port.name.isEmpty ? "port \(number)" : "port \(quoted(port.name)) (\(number))"
    }
}
