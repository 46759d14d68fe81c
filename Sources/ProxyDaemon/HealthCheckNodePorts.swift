import NIOHTTP1
import ServiceModel

/// One Service whose health-check node port this node serves, with what it answers.
public struct HealthCheckService: Sendable, Equatable {
    public var name: ServiceName
    /// `spec.healthCheckNodePort`.
    public var port: UInt16
    /// This node's ready endpoints of the service (see ``HealthCheckNodePorts/localReadyEndpoints(of:node:)``).
    public var localEndpoints: Int

    public init(name: ServiceName, port: UInt16, localEndpoints: Int) {
        self.name = name; self.port = port; self.localEndpoints = localEndpoints
    }
}

/// Health-check node ports as kube-proxy serves them: for each Service with
/// externalTrafficPolicy Local and a `healthCheckNodePort`, a server on that port answers
/// every path with 200 while this node has a ready endpoint of the service and the proxy is
/// healthy, else 503, so a cloud load balancer sends the service's traffic only to nodes
/// that keep it (Local drops external traffic on a node without an endpoint).
public enum HealthCheckNodePorts {
    /// The health check `service` needs on node `node`; nil when it has none (no
    /// externalTrafficPolicy Local or no `healthCheckNodePort`).
    public static func healthCheck(for service: Service, node: String?) -> HealthCheckService? {
        guard service.externalTrafficPolicy == .local, let port = service.healthCheckNodePort else { return nil }
        return HealthCheckService(name: service.name, port: port, localEndpoints: localReadyEndpoints(of: service, node: node))
    }

    /// How many ready endpoints `service` has on `node`, as kube-proxy counts them: distinct
    /// addresses over all the service's ports (an endpoint serving two ports counts once);
    /// terminating endpoints never count, even those that still serve traffic, so a node
    /// whose endpoints all drain fails its health check. kube-proxy counts per IP family; a
    /// dual-stack endpoint has one address per family, so the larger family's count is the
    /// number of endpoints. An endpoint is local only when its node name is known and equal.
    public static func localReadyEndpoints(of service: Service, node: String?) -> Int {
        guard let node else { return 0 }
        var addresses: Set<IPAddress> = []
        for port in service.ports {
            for endpoint in port.endpoints where endpoint.ready && endpoint.nodeName == node {
                addresses.insert(endpoint.address)
            }
        }
        let v4 = addresses.count { $0.family == .v4 }
        return max(v4, addresses.count - v4)
    }

    /// What the health-check node port of `name` answers.
    public static func reply(service name: ServiceName, localEndpoints: Int, proxyHealthy: Bool) -> HTTPReply {
        let status: HTTPResponseStatus = localEndpoints > 0 && proxyHealthy ? .ok : .serviceUnavailable
        var reply = HTTPReply.json(status, """
            {"service": {"namespace": \(jsonString(name.namespace)), "name": \(jsonString(name.name))}, \
            "localEndpoints": \(localEndpoints), "serviceProxyHealthy": \(proxyHealthy)}
            """)
        reply.headers.append(("X-Load-Balancing-Endpoint-Weight", String(localEndpoints)))
        return reply
    }

    /// A JSON string literal (namespace and name are DNS labels, but escape anyway).
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Local traffic policies left without an endpoint on this node, for
/// `kubeproxy_sync_proxy_rules_no_local_endpoints_total` (a gauge in kube-proxy despite its
/// name): counted as kube-proxy's nftables proxier counts them, per service port and IP
/// family that has usable endpoints somewhere in the cluster (ready ones, else serving and
/// terminating ones) but none on this node.
public struct NoLocalEndpoints: Sendable, Equatable {
    /// internalTrafficPolicy Local: pods' and the node's traffic to the ClusterIP is dropped.
    public var `internal` = 0
    /// externalTrafficPolicy Local: external traffic to the NodePort, LB IPs and externalIPs is dropped.
    public var external = 0

    public init(internal: Int = 0, external: Int = 0) { self.internal = `internal`; self.external = external }

    /// The counts of one service on node `node`.
    public init(service: Service, node: String?) {
        let wantsInternal = service.internalTrafficPolicy == .local
        let wantsExternal = service.externalTrafficPolicy == .local
        guard wantsInternal || wantsExternal else { return }
        let families = Set(service.clusterIPs.map(\.family))
        for port in service.ports {
            for family in families {
                let endpoints = port.endpoints.filter { $0.address.family == family }
                guard Self.hasUsable(endpoints) else { continue }
                if Self.hasUsable(endpoints.filter { endpoint in node.map { endpoint.nodeName == $0 } ?? false }) { continue }
                if wantsInternal { self.internal += 1 }
                if wantsExternal { external += 1 }
            }
        }
    }

    /// The proxy would balance over some of `endpoints`: a ready one, or (when none is
    /// ready) a serving and terminating one.
    private static func hasUsable(_ endpoints: [Endpoint]) -> Bool {
        endpoints.contains { $0.ready || ($0.serving && $0.terminating) }
    }

    static func + (lhs: Self, rhs: Self) -> Self { Self(internal: lhs.internal + rhs.internal, external: lhs.external + rhs.external) }
    static func - (lhs: Self, rhs: Self) -> Self { Self(internal: lhs.internal - rhs.internal, external: lhs.external - rhs.external) }
}

/// The health checks and no-local-endpoint counts of every service, kept up to date sync by
/// sync: a sync that changed a few services recomputes only those, so the cost follows
/// what changed, as the ruleset's.
public struct LocalEndpointTracker: Sendable {
    private struct Entry: Sendable {
        var healthCheck: HealthCheckService?
        var noLocal: NoLocalEndpoints
    }

    private var entries: [ServiceName: Entry] = [:]
    private var node: String??
    /// Every service's health check, by name.
    public private(set) var healthChecks: [ServiceName: HealthCheckService] = [:]
    /// The sum over all services.
    public private(set) var noLocalEndpoints = NoLocalEndpoints()

    public init() {}

    /// Takes in a synced `map`: only the services named in `changed` (nil: all of them) are
    /// recomputed, and all of them when the node changed.
    public mutating func update(_ map: ServiceMap, changed: Set<ServiceName>?, node: String?) {
        guard let changed, self.node == .some(node) else {
            self.node = .some(node)
            entries = [:]
            healthChecks = [:]
            noLocalEndpoints = NoLocalEndpoints()
            for service in map.services { set(service.name, service, node: node) }
            return
        }
        for name in changed { set(name, map.service(named: name), node: node) }
    }

    private mutating func set(_ name: ServiceName, _ service: Service?, node: String?) {
        if let old = entries.removeValue(forKey: name) { noLocalEndpoints = noLocalEndpoints - old.noLocal }
        healthChecks[name] = nil
        guard let service else { return }
        let entry = Entry(healthCheck: HealthCheckNodePorts.healthCheck(for: service, node: node),
                          noLocal: NoLocalEndpoints(service: service, node: node))
        // Services without a Local policy (most) keep no entry.
        guard entry.healthCheck != nil || entry.noLocal != NoLocalEndpoints() else { return }
        entries[name] = entry
        healthChecks[name] = entry.healthCheck
        noLocalEndpoints = noLocalEndpoints + entry.noLocal
    }
}

extension ServiceMap {
    /// The service called `name` (a binary search: services are sorted by name).
    func service(named name: ServiceName) -> Service? {
        var low = 0, high = services.count
        while low < high {
            let middle = (low + high) / 2
            if services[middle].name < name { low = middle + 1 } else { high = middle }
        }
        return low < services.count && services[low].name == name ? services[low] : nil
    }
}
