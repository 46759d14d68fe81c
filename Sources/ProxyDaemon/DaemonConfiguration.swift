import Foundation
import ServiceModel

/// What the command line of `nftproxy run` said; nil or empty: not given (the configuration
/// file or the default decides).
public struct DaemonFlags: Sendable, Equatable {
    public var configFile: String?
    public var kubeconfig: String?
    public var master: String?
    public var nodeName: String?
    public var hostnameOverride: String?
    public var nodeIPs: [String] = []
    public var clusterCIDRs: [String] = []
    public var nodePortAddresses: [String] = []
    public var masqueradeAll: Bool?
    public var masqueradeBit: Int?
    public var syncPeriod: String?
    public var minSyncPeriod: String?
    public var healthzBindAddress: String?
    public var metricsBindAddress: String?
    public var serviceProxyName: String?
    public var cleanupOnExit = false
    public var networkNamespace: String?
    /// `--endpoint-counters`; nil: on.
    public var endpointCounters: Bool?
    /// `--endpoint-metrics-limit`; nil: ``EndpointTrafficMetrics/defaultLimit``.
    public var endpointMetricsLimit: Int?

    public init() {}
}

/// Everything `nftproxy run` needs, resolved: flags win over the configuration file, which
/// wins over the defaults (as in kube-proxy).
public struct DaemonConfiguration: Sendable, Equatable {
    /// This node's name: `--node-name`, else `NODE_NAME`, else the host name override, else
    /// the host name (lower-cased, as Kubernetes names nodes).
    public var nodeName: String
    /// `--node-ip` addresses; empty: taken from the Node object (InternalIP, then ExternalIP).
    public var nodeIPs: [IPAddress]
    public var clusterCIDRs: [CIDR]
    /// `primary` means the node's IPs, whichever they end up being.
    public var nodePortAddresses: [NodePortAddress]
    public var masqueradeAll: Bool
    public var masqueradeBit: Int
    public var sync: SyncSettings
    public var healthzBindAddress: BindAddress?
    public var metricsBindAddress: BindAddress?
    public var kubeconfig: String?
    public var master: String?
    public var serviceProxyName: String?
    public var cleanupOnExit: Bool
    public var networkNamespace: String?
    /// Per-endpoint connection counters in the kernel (`NodeConfig/endpointCounters`).
    public var endpointCounters = true
    /// The most endpoints `/metrics` exports traffic metrics for; 0: all.
    public var endpointMetricsLimit = EndpointTrafficMetrics.defaultLimit

    /// One `--nodeport-addresses` value.
    public enum NodePortAddress: Sendable, Equatable {
        case primary
        case range(CIDR)
    }

    /// `host:port` to listen on; an empty or `0` port (kube-proxy's way) turns a server off.
    public struct BindAddress: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

        /// Parses `host:port` or `[v6]:port`; nil with a reason when it is neither.
        static func parse(_ text: String, option: String) throws(ConfigurationProblem) -> BindAddress? {
            var host = Substring(text), port = Substring("")
            if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
                let rest = host[host.index(after: close)...]
                host = host[host.index(after: host.startIndex)..<close]
                guard rest.hasPrefix(":") else { throw ConfigurationProblem("\(option): \(text) has no port (host:port)") }
                port = rest.dropFirst()
            } else if let colon = host.lastIndex(of: ":") {
                port = host[host.index(after: colon)...]
                host = host[..<colon]
            } else {
                throw ConfigurationProblem("\(option): \(text) has no port (host:port)")
            }
            guard IPAddress(String(host)) != nil || host.isEmpty else {
                throw ConfigurationProblem("\(option): \(host) is not an IP address")
            }
            guard let number = Int(port), (0...65535).contains(number) else {
                throw ConfigurationProblem("\(option): \(port) is not a port (0-65535)")
            }
            if number == 0 { return nil }
            return BindAddress(host: host.isEmpty ? "0.0.0.0" : String(host), port: number)
        }
    }

    /// The node configuration for the compiler, once the node's IPs are known.
    public func nodeConfig(nodeIPs known: [IPAddress]) -> NodeConfig {
        var ranges: [CIDR] = []
        for address in nodePortAddresses {
            switch address {
            case .range(let cidr): ranges.append(cidr)
            case .primary: ranges += known.map { CIDR(address: $0, prefixLength: $0.family.addressLength * 8) }
            }
        }
        return NodeConfig(nodeName: nodeName, nodeIPs: known, clusterCIDRs: clusterCIDRs, nodePortAddresses: ranges,
                          masqueradeAll: masqueradeAll, masqueradeBit: masqueradeBit, endpointCounters: endpointCounters)
    }

    /// Resolves flags, the configuration file (if any) and the environment.
    ///
    /// - Returns: the configuration, and warnings (fields of the file nftproxy ignores).
    public static func resolve(flags: DaemonFlags, file: KubeProxyConfigurationFile?, environment: [String: String],
                               hostname: String) throws(ConfigurationProblem) -> (DaemonConfiguration, warnings: [Diagnostic]) {
        let file = file ?? KubeProxyConfigurationFile()
        let override = flags.hostnameOverride ?? file.hostnameOverride
        let nodeName = [flags.nodeName, environment["NODE_NAME"], override, hostname]
            .compactMap { $0?.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty }?.lowercased() ?? ""
        guard !nodeName.isEmpty else { throw ConfigurationProblem("no node name: give --node-name or set NODE_NAME") }

        var nodeIPs = try flags.nodeIPs.map { text throws(ConfigurationProblem) -> IPAddress in
            guard let address = IPAddress(text) else { throw ConfigurationProblem("--node-ip: \(text) is not an IP address") }
            return address
        }
        // kube-proxy takes a specific bindAddress as the node's IP.
        if nodeIPs.isEmpty, let bind = file.bindAddress, let address = IPAddress(bind), !address.isUnspecified {
            nodeIPs = [address]
        }

        let cidrTexts = !flags.clusterCIDRs.isEmpty ? flags.clusterCIDRs : (file.clusterCIDR.map { [$0] } ?? [])
        var clusterCIDRs: [CIDR] = []
        for text in cidrTexts.flatMap({ $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } })
        where !text.isEmpty {
            guard let cidr = CIDR(text) else { throw ConfigurationProblem("cluster CIDR: \(text) is not a CIDR") }
            clusterCIDRs.append(cidr)
        }

        let portTexts = !flags.nodePortAddresses.isEmpty ? flags.nodePortAddresses : (file.nodePortAddresses ?? ["primary"])
        var nodePortAddresses: [NodePortAddress] = []
        for text in portTexts.flatMap({ $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } })
        where !text.isEmpty {
            if text == "primary" {
                nodePortAddresses.append(.primary)
            } else if let cidr = CIDR(text) {
                nodePortAddresses.append(.range(cidr))
            } else {
                throw ConfigurationProblem("--nodeport-addresses: \(text) is neither a CIDR nor primary")
            }
        }

        let masqueradeBit = flags.masqueradeBit ?? file.masqueradeBit ?? 14
        guard (0...31).contains(masqueradeBit) else {
            throw ConfigurationProblem("masquerade bit: \(masqueradeBit) is not a bit number (0-31)")
        }
        func duration(_ flag: String?, _ option: String, _ fromFile: Duration?, _ fallback: Duration)
            throws(ConfigurationProblem) -> Duration {
            guard let flag else { return fromFile ?? fallback }
            guard let parsed = GoDuration.parse(flag) else {
                throw ConfigurationProblem("\(option): \(flag) is not a duration (such as 1s, 30s, 1h0m0s)")
            }
            return parsed
        }
        let syncPeriod = try duration(flags.syncPeriod, "--sync-period", file.syncPeriod, .seconds(3600))
        let minSyncPeriod = try duration(flags.minSyncPeriod, "--min-sync-period", file.minSyncPeriod, .seconds(1))
        guard syncPeriod > .zero else { throw ConfigurationProblem("--sync-period must be greater than 0") }

        let configuration = DaemonConfiguration(
            nodeName: nodeName, nodeIPs: nodeIPs, clusterCIDRs: clusterCIDRs, nodePortAddresses: nodePortAddresses,
            masqueradeAll: flags.masqueradeAll ?? file.masqueradeAll ?? false, masqueradeBit: masqueradeBit,
            sync: SyncSettings(minSyncPeriod: minSyncPeriod, syncPeriod: syncPeriod),
            healthzBindAddress: try BindAddress.parse(flags.healthzBindAddress ?? file.healthzBindAddress ?? "0.0.0.0:10256",
                                                      option: "--healthz-bind-address"),
            metricsBindAddress: try BindAddress.parse(flags.metricsBindAddress ?? file.metricsBindAddress ?? "127.0.0.1:10249",
                                                      option: "--metrics-bind-address"),
            kubeconfig: flags.kubeconfig ?? file.kubeconfig, master: flags.master,
            serviceProxyName: flags.serviceProxyName, cleanupOnExit: flags.cleanupOnExit,
            networkNamespace: flags.networkNamespace, endpointCounters: flags.endpointCounters ?? true)
        var resolved = configuration
        if let limit = flags.endpointMetricsLimit {
            guard limit >= 0 else {
                throw ConfigurationProblem("--endpoint-metrics-limit: \(limit) is negative (0 means no limit)")
            }
            resolved.endpointMetricsLimit = limit
        }
        return (resolved, file.warnings)
    }
}

/// A configuration that cannot be used, with what is wrong.
public struct ConfigurationProblem: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension IPAddress {
    /// 0.0.0.0 or ::.
    var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }
}
