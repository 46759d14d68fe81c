import ServiceModel

/// Which Service (and which of its ports) serves each frontend of a ServiceMap: the
/// names behind the keys of a ruleset. Where several services claim one frontend, the one
/// whose `namespace/name` sorts first owns it, as the compiler decides.
public struct FrontendOwners: Sendable {
    /// A frontend's owner.
    public struct Owner: Hashable, Sendable {
        public var service: ServiceName
        public var portName: String
    }

    private var owners: [ProgrammedFrontend.Key: Owner] = [:]

    /// The owners of every frontend of `map`.
    public init(_ map: ServiceMap) {
        for service in map.services {
            for port in service.ports {
                let owner = Owner(service: service.name, portName: port.name)
                for address in service.clusterIPs + service.externalIPs + service.loadBalancerIPs {
                    let key = ProgrammedFrontend.Key(family: address.family, address: address, transport: port.transport,
                                                     port: port.port)
                    if owners[key] == nil { owners[key] = owner }
                }
                if let nodePort = port.nodePort {
                    for family in IPFamily.allCases {
                        let key = ProgrammedFrontend.Key(family: family, address: nil, transport: port.transport, port: nodePort)
                        if owners[key] == nil { owners[key] = owner }
                    }
                }
            }
        }
    }

    /// The owner of `key`, if a Service of the map claims it.
    public subscript(key: ProgrammedFrontend.Key) -> Owner? { owners[key] }
}
