import ServiceModel

/// One service port's endpoints in one family, with what the kernel counted for each,
/// summed over the port's frontends (ClusterIP, externalIPs, LB IPs, NodePort): what
/// `nftproxy stats` shows and `/metrics` exports.
public struct ServicePortTraffic: Hashable, Sendable {
    /// From the element comments (docs/ruleset.md, "Endpoint counters"); nil for frontends
    /// read without names (tables programmed without endpoint counters), one group each.
    public var service: ServiceName?
    /// The port's name ("" for the single unnamed port).
    public var portName: String
    public var family: IPFamily
    public var frontends: [FrontendTraffic]
    /// Each endpoint once, in first-seen order, its counts summed over the frontends.
    public var endpoints: [EndpointCount]

    /// All connections of the port.
    public var totalConnections: UInt64 { endpoints.reduce(0) { $0 + $1.connections } }

    /// An endpoint's share of the port's connections (0 when there are none).
    public func share(of endpoint: EndpointCount) -> Double {
        let total = totalConnections
        return total == 0 ? 0 : Double(endpoint.connections) / Double(total)
    }

    /// How far the spread of connections is from uniform (``SpreadDeviation``).
    public var largestDeviation: Double? { SpreadDeviation.largest(endpoints.map(\.connections)) }

    /// `default/web port http`, or the frontend for a group without names.
    public var title: String {
        guard let service else { return frontends.first.map { "\($0.key)" } ?? "?" }
        let port = portName.isEmpty ? "" : " port \(portName)"
        return "\(service)\(port) (\(family == .v4 ? "IPv4" : "IPv6"))"
    }

    /// The `port` label of its metrics (``portLabel(name:frontends:)``).
    public var portLabel: String { Self.portLabel(name: portName, frontends: frontends.map { ($0.kind, $0.key.port) }) }

    /// A service port's name, or when it has none (a Service's single unnamed port) the port
    /// number of its first frontend that is not a NodePort (of its first frontend when all are).
    public static func portLabel(name: String, frontends: [(kind: ProgrammedFrontend.Kind, port: UInt16)]) -> String {
        if !name.isEmpty { return name }
        let frontend = frontends.first { $0.kind != .nodePort } ?? frontends.first
        return frontend.map { String($0.port) } ?? ""
    }

    /// The frontends grouped by service port and family, in the order of their first frontend.
    public static func group(_ frontends: [FrontendTraffic]) -> [ServicePortTraffic] {
        struct GroupKey: Hashable { var service: ServiceName; var port: String; var family: IPFamily }
        var groups: [ServicePortTraffic] = []
        var index: [GroupKey: Int] = [:]
        for frontend in frontends {
            guard let names = frontend.names else {
                groups.append(ServicePortTraffic(service: nil, portName: "", family: frontend.key.family,
                                                 frontends: [frontend], endpoints: frontend.endpoints))
                continue
            }
            let key = GroupKey(service: names.service, port: names.portName, family: frontend.key.family)
            if let at = index[key] {
                groups[at].add(frontend)
            } else {
                index[key] = groups.count
                groups.append(ServicePortTraffic(service: names.service, portName: names.portName, family: key.family,
                                                 frontends: [frontend], endpoints: frontend.endpoints))
            }
        }
        return groups
    }

    /// Adds a frontend's counts to the endpoints they belong to.
    private mutating func add(_ frontend: FrontendTraffic) {
        frontends.append(frontend)
        for endpoint in frontend.endpoints {
            if let at = endpoints.firstIndex(where: { $0.address == endpoint.address && $0.port == endpoint.port }) {
                endpoints[at].connections += endpoint.connections
                endpoints[at].packets += endpoint.packets
                endpoints[at].bytes += endpoint.bytes
                if let open = endpoint.open { endpoints[at].open = (endpoints[at].open ?? 0) + open }
                if endpoints[at].names == nil { endpoints[at].names = endpoint.names }
            } else {
                endpoints.append(endpoint)
            }
        }
    }
}

/// How far counts spread over k choices are from a uniform random choice.
public enum SpreadDeviation {
    /// The largest |count − N/k| among the k counts, in standard deviations of a uniform
    /// random choice (√(N·(1/k)·(1−1/k))). Nil with fewer than two counts or none counted,
    /// where there is nothing to compare.
    public static func largest(_ counts: [UInt64]) -> Double? {
        let k = Double(counts.count), total = Double(counts.reduce(0, +))
        guard counts.count >= 2, total > 0 else { return nil }
        let expected = total / k
        let deviation = (total * (1 / k) * (1 - 1 / k)).squareRoot()
        return counts.map { abs(Double($0) - expected) / deviation }.max()
    }
}
