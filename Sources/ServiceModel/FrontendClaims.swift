/// What kind of address a frontend answers on.
public enum FrontendKind: Hashable, Sendable {
    /// One of the service's ClusterIPs.
    case clusterIP
    /// An externalIP or load-balancer IP.
    case external
    /// A NodePort, on the node's own addresses.
    case nodePort
}

/// Identity of a frontend: (address, protocol, port), or (protocol, NodePort) for NodePorts,
/// which answer on the node's own addresses. Two services cannot both be served on one key.
public struct FrontendKey: Hashable, Sendable, CustomStringConvertible {
    /// nil for NodePorts.
    public var address: IPAddress?
    public var transport: TransportProtocol
    public var port: UInt16

    public init(address: IPAddress?, transport: TransportProtocol, port: UInt16) {
        self.address = address
        self.transport = transport
        self.port = port
    }

    /// `198.18.0.1 tcp/80` or `NodePort tcp/30080`.
    public var description: String {
        if let address { return "\(address) \(transport)/\(port)" }
        return "NodePort \(transport)/\(port)"
    }
}

/// One frontend a service claims, with the index of the service port it serves.
public struct FrontendClaim: Hashable, Sendable {
    public var kind: FrontendKind
    public var key: FrontendKey
    /// The index in `spec.ports` of the service port it serves.
    public var portIndex: Int

    public init(kind: FrontendKind, key: FrontendKey, portIndex: Int) {
        self.kind = kind
        self.key = key
        self.portIndex = portIndex
    }
}

/// The one rule for frontends claimed by more than one service, used both when input is
/// decoded and when a ServiceMap is compiled:
///
/// - A service answers in a family only if it has a ClusterIP of that family; there it
///   claims, per port in declaration order, its ClusterIPs, then its externalIPs and
///   load-balancer IPs, then its NodePort.
/// - Each ``FrontendKey`` is served for exactly one service: of all services claiming it, the
///   one whose `namespace/name` sorts first. The others lose that frontend only; their other
///   frontends stay.
public enum FrontendClaims {
    /// The frontends `service` claims in `family`, in the stable order described above.
    public static func claims(of service: Service, family: IPFamily) -> [FrontendClaim] {
        guard service.clusterIPs.contains(where: { $0.family == family }) else { return [] }
        var result: [FrontendClaim] = []
        for (index, port) in service.ports.enumerated() {
            for ip in service.clusterIPs where ip.family == family {
                result.append(FrontendClaim(kind: .clusterIP, key: FrontendKey(address: ip, transport: port.transport, port: port.port),
                                            portIndex: index))
            }
            for ip in service.externalIPs + service.loadBalancerIPs where ip.family == family {
                result.append(FrontendClaim(kind: .external, key: FrontendKey(address: ip, transport: port.transport, port: port.port),
                                            portIndex: index))
            }
            if let nodePort = port.nodePort {
                result.append(FrontendClaim(kind: .nodePort, key: FrontendKey(address: nil, transport: port.transport, port: nodePort),
                                            portIndex: index))
            }
        }
        return result
    }

    /// Whether `candidate` wins a frontend over `holder`: the name that sorts first wins.
    public static func wins(_ candidate: ServiceName, over holder: ServiceName) -> Bool {
        candidate < holder
    }

    /// The warning for a frontend that `loser` claims (with `claim`) and `owner` keeps.
    public static func conflict(_ claim: FrontendClaim, loser: ServiceName, owner: ServiceName) -> Diagnostic {
        let port = "spec.ports[\(claim.portIndex)]"
        return Diagnostic(.warning, .frontendConflict, object: .service(loser),
                          field: claim.kind == .nodePort ? "\(port).nodePort" : "\(port).port",
                          related: .service(owner), frontend: claim.key,
                          message: "\(claim.key) is claimed by both \(owner) and \(loser); \(owner) keeps it")
    }

    /// The warnings for every frontend claimed by more than one service of `services`, in
    /// family order (IPv4, IPv6), then service name order; each warning once.
    public static func conflicts(in services: [Service]) -> [Diagnostic] {
        let sorted = services.sorted { $0.name < $1.name }
        var warnings: [Diagnostic] = []
        var seen = Set<Diagnostic>()
        for family in IPFamily.allCases {
            var owners: [FrontendKey: ServiceName] = [:]
            for service in sorted {
                for claim in claims(of: service, family: family) {
                    guard let owner = owners[claim.key] else {
                        owners[claim.key] = service.name
                        continue
                    }
                    if owner != service.name {
                        let warning = conflict(claim, loser: service.name, owner: owner)
                        if seen.insert(warning).inserted { warnings.append(warning) }
                    }
                }
            }
        }
        return warnings
    }
}
