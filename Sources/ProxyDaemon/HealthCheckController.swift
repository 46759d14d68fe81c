import Logging
import ServiceModel
import Synchronization

/// Keeps the health-check node ports in step with what was programmed: the sync loop
/// reports each successful sync (``synced(_:changed:node:)``), which updates the local
/// endpoint counts the servers answer with and the no-local-endpoints metric at once, and
/// ``run()`` opens and closes the servers themselves off the sync loop.
public final class HealthCheckController: Sendable {
    private struct State {
        var tracker = LocalEndpointTracker()
        /// `--nodeport-addresses` as ranges (`primary`: the node's IPs).
        var ranges: [CIDR] = []
        var synced = false
    }

    private let state = Mutex(State())
    private let counts: HealthCheckCounts
    private let servers: HealthCheckServers
    private let metrics: ProxyMetrics?
    private let localAddresses: @Sendable () throws -> [IPAddress]
    private let logger: Logger
    private let doorbell = Doorbell()

    /// A controller opening servers through `listening` (whose namespace's addresses
    /// `localAddresses` lists), answering with the proxy's `health`.
    public init(listening: any HealthCheckListening, localAddresses: @escaping @Sendable () throws -> [IPAddress],
                health: ProxyHealth, metrics: ProxyMetrics?, logger: Logger) {
        let counts = HealthCheckCounts()
        self.counts = counts
        self.servers = HealthCheckServers(listening: listening, counts: counts, health: health, logger: logger)
        self.metrics = metrics
        self.localAddresses = localAddresses
        self.logger = logger
    }

    /// A sync programmed `map` for `node`; the services in `changed` (nil: any) changed since
    /// the last one.
    public func synced(_ map: ServiceMap, changed: Set<ServiceName>?, node: NodeConfig) {
        let (checks, noLocal) = state.withLock { state in
            state.tracker.update(map, changed: changed, node: node.nodeName)
            state.ranges = node.nodePortAddresses
            state.synced = true
            return (state.tracker.healthChecks, state.tracker.noLocalEndpoints)
        }
        counts.set(checks)
        metrics?.noLocalEndpoints(noLocal)
        doorbell.ring()
    }

    /// The open servers: service and port.
    public var openPorts: [ServiceName: UInt16] { get async { await servers.openPorts } }

    /// Opens and closes servers after each sync until the task is cancelled; then closes all.
    public func run() async {
        // What the last reconcile was asked for; it runs again when that changes, or to
        // retry ports that could not be opened (as kube-proxy, at each sync).
        var last: (ports: [ServiceName: UInt16], ranges: [CIDR])?
        var failures = false
        while !Task.isCancelled {
            _ = await doorbell.wait(timeout: nil)
            if Task.isCancelled { break }
            let (checks, ranges, synced) = state.withLock { ($0.tracker.healthChecks, $0.ranges, $0.synced) }
            guard synced else { continue }
            let ports = checks.mapValues(\.port)
            if let last, last.ports == ports, last.ranges == ranges, !failures { continue }
            var hosts: [String] = []
            if !checks.isEmpty {
                do {
                    hosts = HealthCheckAddresses.hosts(ranges: ranges, localAddresses: try localAddresses())
                } catch {
                    logger.error("cannot list the node's addresses for health-check node ports", metadata: ["error": "\(error)"])
                }
            }
            let changes = await servers.reconcile(checks, hosts: hosts)
            failures = !changes.failed.isEmpty
            last = (ports, ranges)
        }
        await servers.closeAll()
    }
}
