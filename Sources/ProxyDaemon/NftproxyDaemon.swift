import Foundation
import KubeClient
import Logging
import Netlink
import Nftables
import ProxyCompiler
import ProxyEngine
import ServiceLifecycle
import ServiceModel

/// `nftproxy run`: the whole daemon as one swift-service-lifecycle service. It adopts what
/// the kernel holds (the first sync reads our tables back and commits only the difference,
/// never a flush), follows the API, serves health and metrics, and on SIGTERM or SIGINT
/// stops promptly, leaving the ruleset in place (or removing it with `--cleanup-on-exit`).
public struct NftproxyDaemon: ServiceLifecycle.Service, Sendable {
    public let configuration: DaemonConfiguration
    public let connection: ClusterConnection
    public let logger: Logger

    public init(configuration: DaemonConfiguration, connection: ClusterConnection, logger: Logger) {
        self.configuration = configuration
        self.connection = connection
        self.logger = logger
    }

    public func run() async throws {
        let config = configuration
        let health = ProxyHealth(healthTimeout: config.sync.syncPeriod * 2)
        let metrics = ProxyMetrics()
        let state = ClusterState()
        let kernel = try NetlinkKernel(networkNamespace: config.networkNamespace)
        let knownNode = config.nodeIPs.isEmpty ? nil : config.nodeConfig(nodeIPs: config.nodeIPs)
        let listening = NamespaceHealthCheckListening(namespace: config.networkNamespace)
        let healthChecks = HealthCheckController(listening: listening, localAddresses: { try listening.localAddresses() },
                                                 health: health, metrics: metrics, logger: logger)
        let endpointTraffic = config.endpointCounters
            ? EndpointTrafficMetrics(networkNamespace: config.networkNamespace, limit: config.endpointMetricsLimit,
                                     logger: logger) : nil
        let loop = SyncLoop(node: knownNode, kernel: kernel, source: state, health: health, metrics: metrics,
                            settings: config.sync, logger: logger, synced: { map, changed, node in
            healthChecks.synced(map, changed: changed, node: node)
            endpointTraffic?.programmed(map, node: node)
        })
        let endpoints = DaemonEndpoints(health: health, metrics: metrics, endpointTraffic: endpointTraffic)
        var servers: [HTTPEndpointServer] = []
        for (address, responder, what) in [(config.healthzBindAddress, endpoints.healthPort, "healthz"),
                                           (config.metricsBindAddress, endpoints.metricsPort, "metrics")] {
            guard let address else { continue }
            servers.append(try await HTTPEndpointServer.start(host: address.host, port: address.port, responder: responder))
            logger.info("serving \(what)", metadata: ["address": "\(address)"])
        }
        for warning in connection.warnings { logger.warning("\(warning)") }
        let client = try KubeAPIClient(connection: connection)
        let watch = ClusterWatch(client: client, state: state, loop: loop, health: health, metrics: metrics,
                                 logger: logger, nodeName: config.nodeName, serviceProxyName: config.serviceProxyName,
                                 nodeChanged: { facts in
            // --node-ip wins over the Node's addresses; its zone decides topology hints. A
            // change of either re-syncs in full.
            let addresses = config.nodeIPs.isEmpty ? facts.addresses : config.nodeIPs
            guard !addresses.isEmpty else {
                logger.warning("the Node object has no InternalIP or ExternalIP yet: NodePorts wait for one")
                return
            }
            var node = config.nodeConfig(nodeIPs: addresses)
            node.zone = facts.zone
            await loop.setNode(node)
        })
        logger.info("starting", metadata: [
            "node": "\(config.nodeName)", "server": "\(connection.server)",
            "minSyncPeriod": "\(config.sync.minSyncPeriod)", "syncPeriod": "\(config.sync.syncPeriod)",
        ])
        logger.info("not syncing the ruleset until Services and EndpointSlices have been received")

        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await loop.run() }
                group.addTask { await watch.run() }
                group.addTask { await healthChecks.run() }
            }
        }
        logger.info("stopping")
        for server in servers { await server.close() }
        try? await client.shutdown()
        if config.cleanupOnExit {
            try removeTables(networkNamespace: config.networkNamespace)
            logger.info("removed nftproxy's tables (--cleanup-on-exit)")
        } else {
            logger.info("the ruleset stays in place")
        }
    }

    /// Deletes nftproxy's tables, as `nftproxy cleanup` does.
    private func removeTables(networkNamespace: String?) throws {
        let kernel = try NetlinkKernel(networkNamespace: networkNamespace)
        var transaction = Transaction()
        for family in TableFamily.allCases where try kernel.readTable(family, RulesetLayout.tableName) != nil {
            transaction.append(.deleteTable(family, RulesetLayout.tableName))
        }
        if !transaction.isEmpty { try kernel.commit(transaction, expectedGeneration: nil) }
    }
}
