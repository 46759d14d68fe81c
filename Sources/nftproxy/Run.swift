import ArgumentParser
import Foundation
import KubeClient
import Logging
import ProxyDaemon
import ServiceModel
import ServiceLifecycle

/// `nftproxy run`: the daemon that replaces kube-proxy on a node.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch the Kubernetes API and keep this node's ruleset in sync (replaces kube-proxy).",
        discussion: """
            Follows Services, EndpointSlices and this node's Node object, programs nothing until the \
            first complete lists arrived, then commits only what changed. A restart adopts the rules \
            the kernel holds (no flush). SIGTERM or SIGINT stop it and leave the rules in place. \
            Health on --healthz-bind-address (/healthz, /livez) and Prometheus metrics on \
            --metrics-bind-address (/metrics), as kube-proxy serves them. Flags win over --config.
            """)

    @Option(help: ArgumentHelp("A kube-proxy configuration file (KubeProxyConfiguration, kubeproxy.config.k8s.io/v1alpha1).",
                               valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("A kubeconfig file (default: the in-cluster service account).", valueName: "file"))
    var kubeconfig: String?

    @Option(help: ArgumentHelp("The API server's address, overriding the kubeconfig's.", valueName: "url"))
    var master: String?

    @Option(help: "This node's name (default: NODE_NAME, then --hostname-override, then the host name).")
    var nodeName: String?

    @Option(help: "The name this node has in Kubernetes, if not its host name.")
    var hostnameOverride: String?

    @Option(name: .customLong("node-ip"), help: "A primary address of this node (repeatable; default: the Node object's).")
    var nodeIP: [String] = []

    @Option(name: .customLong("cluster-cidr"), help: "Pod ranges, comma-separated or repeated.")
    var clusterCIDR: [String] = []

    @Option(name: .customLong("nodeport-addresses"),
            help: ArgumentHelp("Where NodePorts answer: `primary` (the node's IPs, the default) or CIDRs.",
                               valueName: "primary|cidr"))
    var nodePortAddresses: [String] = []

    @Flag(inversion: .prefixedNo, help: "Masquerade all traffic to services.")
    var masqueradeAll: Bool?

    @Option(help: "Bit of the packet mark that asks for masquerading (0-31, default 14).")
    var masqueradeBit: Int?

    @Option(help: ArgumentHelp("Count each endpoint's connections, packets and bytes in the kernel (default true).",
                               valueName: "true|false"))
    var endpointCounters: Bool?

    @Option(help: ArgumentHelp("Export traffic metrics for at most N endpoints (default 10000; 0: all).", valueName: "n"))
    var endpointMetricsLimit: Int?

    @Option(help: ArgumentHelp("How often everything is synced in full (default 1h).", valueName: "duration"))
    var syncPeriod: String?

    @Option(help: ArgumentHelp("The least time between two syncs (default 1s; 0 syncs every change).", valueName: "duration"))
    var minSyncPeriod: String?

    @Option(help: ArgumentHelp("Where /healthz and /livez are served (default 0.0.0.0:10256; port 0: off).",
                               valueName: "host:port"))
    var healthzBindAddress: String?

    @Option(help: ArgumentHelp("Where /metrics is served (default 127.0.0.1:10249; port 0: off).", valueName: "host:port"))
    var metricsBindAddress: String?

    @Option(help: "Serve only Services labelled service.kubernetes.io/service-proxy-name with this name.")
    var serviceProxyName: String?

    @Flag(help: "Remove nftproxy's tables when stopping (by default they stay, so traffic keeps flowing).")
    var cleanupOnExit = false

    @Option(name: .customLong("netns"), help: "Program the named network namespace instead of the current one.")
    var networkNamespace: String?

    @Option(help: "text or json.")
    var logFormat = "text"

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Flag(help: "Check the flags, the configuration file and the kubeconfig, print the result, and exit.")
    var checkConfig = false

    func validate() throws {
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format: \(logFormat) is neither text nor json") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: \(logLevel) is not a level") }
    }

    func run() async throws {
        let (configuration, connection, fileWarnings) = try resolve()
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let format = logFormat
        LoggingSystem.bootstrap { label in
            if format == "json" {
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "nftproxy")
        for warning in fileWarnings { logger.log(warning) }
        if checkConfig {
            // The daemon logs the connection's warnings when it starts; --check-config does not start it.
            for warning in connection.warnings { logger.warning("\(warning)") }
            let warnings = fileWarnings.count + connection.warnings.count
            print("nftproxy: configuration is valid: node \(configuration.nodeName), API server \(connection.server)"
                  + (warnings == 0 ? "" : " (\(warnings) warnings)"))
            return
        }
        let daemon = NftproxyDaemon(configuration: configuration, connection: connection, logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: daemon)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("stopped with an error", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }

    /// Flags, file and kubeconfig, resolved; exits 1 naming what is wrong.
    private func resolve() throws -> (DaemonConfiguration, ClusterConnection, [Diagnostic]) {
        var flags = DaemonFlags()
        flags.configFile = config
        flags.kubeconfig = kubeconfig
        flags.master = master
        flags.nodeName = nodeName
        flags.hostnameOverride = hostnameOverride
        flags.nodeIPs = nodeIP
        flags.clusterCIDRs = clusterCIDR
        flags.nodePortAddresses = nodePortAddresses
        flags.masqueradeAll = masqueradeAll
        flags.masqueradeBit = masqueradeBit
        flags.endpointCounters = endpointCounters
        flags.endpointMetricsLimit = endpointMetricsLimit
        flags.syncPeriod = syncPeriod
        flags.minSyncPeriod = minSyncPeriod
        flags.healthzBindAddress = healthzBindAddress
        flags.metricsBindAddress = metricsBindAddress
        flags.serviceProxyName = serviceProxyName
        flags.cleanupOnExit = cleanupOnExit
        flags.networkNamespace = networkNamespace
        do {
            var file: KubeProxyConfigurationFile?
            if let config {
                guard let data = FileManager.default.contents(atPath: config) else {
                    throw ConfigurationProblem("\(config): cannot read the file")
                }
                file = try KubeProxyConfigurationFile.parse(String(decoding: data, as: UTF8.self), source: config)
            }
            let (configuration, warnings) = try DaemonConfiguration.resolve(
                flags: flags, file: file, environment: ProcessInfo.processInfo.environment,
                hostname: ProcessInfo.processInfo.hostName)
            var connection = try configuration.kubeconfig.map { try Kubeconfig.load(path: $0) } ?? InClusterConfig.load()
            if let master { connection = try connection.overridingServer(master) }
            return (configuration, connection, warnings)
        } catch {
            printError("nftproxy run: \(error)")
            throw ExitCode(1)
        }
    }
}
