/// The transport protocols a Service port can use.
public enum TransportProtocol: String, Hashable, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    case tcp, udp, sctp

    /// Kubernetes spelling ("TCP", "UDP", "SCTP").
    public init?(kubernetes: String) { self.init(rawValue: kubernetes.lowercased()) }

    /// IANA protocol number, as `meta l4proto` sees it.
    public var number: UInt8 {
        switch self {
        case .tcp: return 6
        case .udp: return 17
        case .sctp: return 132
        }
    }

    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.number < rhs.number }
}

/// `namespace/name` of a Service.
public struct ServiceName: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var namespace: String
    public var name: String
    public init(namespace: String, name: String) { self.namespace = namespace; self.name = name }
    public var description: String { "\(namespace)/\(name)" }
    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.namespace, lhs.name) < (rhs.namespace, rhs.name) }
}

/// One backend of a service port, as the EndpointSlices describe it.
public struct Endpoint: Hashable, Sendable {
    public var address: IPAddress
    /// Target port on the endpoint (already resolved through the EndpointSlice ports).
    public var port: UInt16
    /// EndpointConditions; Kubernetes treats an absent `ready`/`serving` as true.
    public var ready: Bool
    public var serving: Bool
    public var terminating: Bool
    /// Node the endpoint runs on, if known (decides "local" endpoints).
    public var nodeName: String?
    public var zone: String?
    /// Topology hints (`hints.forZones[].name`, `hints.forNodes[].name`): where the
    /// EndpointSlice controller wants this endpoint used; empty: no hint.
    public var zoneHints: [String]
    public var nodeHints: [String]

    public init(address: IPAddress, port: UInt16, ready: Bool = true, serving: Bool = true,
                terminating: Bool = false, nodeName: String? = nil, zone: String? = nil,
                zoneHints: [String] = [], nodeHints: [String] = []) {
        self.address = address; self.port = port; self.ready = ready; self.serving = serving
        self.terminating = terminating; self.nodeName = nodeName; self.zone = zone
        self.zoneHints = zoneHints; self.nodeHints = nodeHints
    }
}

/// externalTrafficPolicy / internalTrafficPolicy.
public enum TrafficPolicy: String, Hashable, Sendable {
    case cluster = "Cluster"
    case local = "Local"
}

/// One port of a Service together with the endpoints that serve it.
public struct ServicePort: Hashable, Sendable {
    /// Port name ("" for the single unnamed port). Matches the EndpointSlice port name.
    public var name: String
    public var transport: TransportProtocol
    public var port: UInt16
    /// NodePort, if the Service type allocates one.
    public var nodePort: UInt16?
    /// Endpoints for this port across all of the Service's EndpointSlices, deduplicated.
    public var endpoints: [Endpoint]

    public init(name: String, transport: TransportProtocol, port: UInt16, nodePort: UInt16? = nil,
                endpoints: [Endpoint] = []) {
        self.name = name; self.transport = transport; self.port = port
        self.nodePort = nodePort; self.endpoints = endpoints
    }
}

/// A Service as nftproxy needs it: frontends, ports with endpoints, and policies.
public struct Service: Hashable, Sendable {
    public var name: ServiceName
    /// spec.clusterIPs (both families for dual-stack). Empty for headless services.
    public var clusterIPs: [IPAddress]
    /// spec.externalIPs.
    public var externalIPs: [IPAddress]
    /// status.loadBalancer.ingress[].ip.
    public var loadBalancerIPs: [IPAddress]
    public var ports: [ServicePort]
    public var externalTrafficPolicy: TrafficPolicy
    public var internalTrafficPolicy: TrafficPolicy
    /// Seconds of ClientIP session affinity; nil when affinity is None.
    public var sessionAffinityTimeout: UInt32?
    public var loadBalancerSourceRanges: [CIDR]
    /// `spec.healthCheckNodePort`: where `nftproxy run` answers load balancers' health checks
    /// for this node (only externalTrafficPolicy Local services of type LoadBalancer have
    /// one). Not part of the ruleset.
    public var healthCheckNodePort: UInt16? = nil

    public init(name: ServiceName, clusterIPs: [IPAddress] = [], externalIPs: [IPAddress] = [],
                loadBalancerIPs: [IPAddress] = [], ports: [ServicePort] = [],
                externalTrafficPolicy: TrafficPolicy = .cluster, internalTrafficPolicy: TrafficPolicy = .cluster,
                sessionAffinityTimeout: UInt32? = nil, loadBalancerSourceRanges: [CIDR] = []) {
        self.name = name; self.clusterIPs = clusterIPs; self.externalIPs = externalIPs
        self.loadBalancerIPs = loadBalancerIPs; self.ports = ports
        self.externalTrafficPolicy = externalTrafficPolicy; self.internalTrafficPolicy = internalTrafficPolicy
        self.sessionAffinityTimeout = sessionAffinityTimeout; self.loadBalancerSourceRanges = loadBalancerSourceRanges
    }
}

/// Everything the node must serve: the input of the compiler, free of Kubernetes types.
public struct ServiceMap: Hashable, Sendable {
    /// Services sorted by name.
    public var services: [Service]
    public init(services: [Service]) { self.services = services.sorted { $0.name < $1.name } }

    /// A map of services the caller already keeps sorted by name with no name twice (a
    /// daemon's cache updated in place): nothing is sorted, so making the map costs nothing
    /// whatever the number of services.
    public init(sortedServices: [Service]) {
        assert(zip(sortedServices, sortedServices.dropFirst()).allSatisfy { $0.name < $1.name },
               "ServiceMap(sortedServices:) given services out of order")
        services = sortedServices
    }
}

extension Array where Element == Service {
    /// Where a service named `name` is, or would go, in this list sorted by name (binary search).
    public func position(of name: ServiceName) -> Int {
        var low = 0, high = count
        while low < high {
            let middle = (low + high) / 2
            if self[middle].name < name { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
