import Logging
import ServiceModel
import Synchronization

/// An open health-check server (its sockets on every address).
public protocol HealthCheckListener: Sendable {
    /// Stops listening on every address.
    func close() async
}

/// Opens health-check servers: the network side of ``HealthCheckServers``, replaced by an
/// in-memory fake in tests.
public protocol HealthCheckListening: Sendable {
    /// Listens on `port` at each of `hosts`, answering every request with `responder`.
    /// Throws when any address cannot be bound; then nothing stays open.
    func listen(port: UInt16, hosts: [String], responder: @escaping HTTPEndpointServer.Responder) async throws
        -> any HealthCheckListener
}

/// The local endpoint counts the health-check servers answer with, shared with their
/// responders (which run off the event loop, any time).
public final class HealthCheckCounts: Sendable {
    private let counts = Mutex<[ServiceName: Int]>([:])

    public init() {}

    /// Replaces every count.
    public func set(_ services: [ServiceName: HealthCheckService]) {
        let counts = services.mapValues(\.localEndpoints)
        self.counts.withLock { $0 = counts }
    }

    /// The count of `name`; 0 when it has no health check (any more).
    public func localEndpoints(_ name: ServiceName) -> Int { counts.withLock { $0[name] ?? 0 } }
}

/// Opens and closes health-check servers as services come and go: each reconcile makes the
/// open servers exactly the wanted ones (a changed port or address list reopens a
/// server). A port that cannot be bound is logged, not fatal, and tried again at the next
/// reconcile, as kube-proxy does.
public actor HealthCheckServers {
    private struct Open {
        var port: UInt16
        var hosts: [String]
        var listener: any HealthCheckListener
    }

    /// What a reconcile did.
    public struct Changes: Sendable, Equatable {
        public var opened: [ServiceName] = []
        public var closed: [ServiceName] = []
        /// Services whose port could not be opened, with the reason.
        public var failed: [ServiceName: String] = [:]

        public init() {}
    }

    private let listening: any HealthCheckListening
    private let counts: HealthCheckCounts
    private let health: ProxyHealth
    private let logger: Logger
    private var open: [ServiceName: Open] = [:]

    /// Servers opened through `listening`, answering from `counts` and the proxy's `health`.
    public init(listening: any HealthCheckListening, counts: HealthCheckCounts, health: ProxyHealth,
                logger: Logger = Logger(label: "nftproxy.healthcheck")) {
        self.listening = listening
        self.counts = counts
        self.health = health
        self.logger = logger
    }

    /// The open servers: service and port.
    public var openPorts: [ServiceName: UInt16] { open.mapValues(\.port) }

    /// Makes the open servers those of `wanted`, each listening on `hosts`.
    @discardableResult
    public func reconcile(_ wanted: [ServiceName: HealthCheckService], hosts: [String]) async -> Changes {
        var changes = Changes()
        for (name, server) in open.sorted(by: { $0.key < $1.key }) {
            guard let service = wanted[name], service.port == server.port, server.hosts == hosts else {
                await server.listener.close()
                open[name] = nil
                changes.closed.append(name)
                logger.info("closed health-check node port", metadata: ["service": "\(name)", "port": "\(server.port)"])
                continue
            }
        }
        for (name, service) in wanted.sorted(by: { $0.key < $1.key }) where open[name] == nil {
            guard !hosts.isEmpty else {
                changes.failed[name] = "no local address in --nodeport-addresses"
                logger.error("cannot serve health-check node port: no local address in --nodeport-addresses",
                             metadata: ["service": "\(name)", "port": "\(service.port)"])
                continue
            }
            let counts = self.counts, health = self.health
            do {
                let listener = try await listening.listen(port: service.port, hosts: hosts) { _, _ in
                    HealthCheckNodePorts.reply(service: name, localEndpoints: counts.localEndpoints(name),
                                               proxyHealthy: health.report().healthy)
                }
                open[name] = Open(port: service.port, hosts: hosts, listener: listener)
                changes.opened.append(name)
                logger.info("serving health-check node port", metadata: [
                    "service": "\(name)", "port": "\(service.port)", "addresses": "\(hosts.joined(separator: ","))",
                ])
            } catch {
                changes.failed[name] = "\(error)"
                logger.error("failed to start health-check node port", metadata: [
                    "service": "\(name)", "port": "\(service.port)", "error": "\(error)",
                ])
            }
        }
        return changes
    }

    /// Closes every server.
    public func closeAll() async {
        for server in open.values { await server.listener.close() }
        open = [:]
    }
}

/// Where health-check servers listen: the `--nodeport-addresses` ranges (with `primary`
/// already turned into the node's IPs) select this node's local addresses; a family with no
/// range listens on its wildcard address (kube-proxy listens on every address when no
/// range is given), if the node has an address of that family at all.
public enum HealthCheckAddresses {
    public static func hosts(ranges: [CIDR], localAddresses: [IPAddress]) -> [String] {
        var hosts: [String] = []
        for (family, wildcard) in [(IPFamily.v4, "0.0.0.0"), (.v6, "::")] {
            let local = localAddresses.filter { $0.family == family }
            let familyRanges = ranges.filter { $0.family == family }
            if familyRanges.isEmpty {
                if !local.isEmpty { hosts.append(wildcard) }
            } else {
                let selected = Set(local.filter { address in familyRanges.contains { $0.contains(address) } })
                hosts += selected.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }.map(\.description)
            }
        }
        return hosts
    }
}
