import Foundation
import Logging
import Nftables
import ProxyCompiler
import ProxyEngine

/// Per-endpoint traffic metrics, read from the kernel at scrape time: one read-back of
/// nftproxy's tables (requests naming thousands of keys, and dumps of the smaller sets;
/// not a request per endpoint), whose `endpoint-connections` and `endpoint-traffic` sets
/// count each endpoint's connections, packets and bytes, and whose element comments name
/// its service, port and node (docs/ruleset.md, "Endpoint counters"). Counts are summed
/// over a port's frontends.
///
/// `nftproxy_endpoint_connections_total`, `nftproxy_endpoint_packets_total`,
/// `nftproxy_endpoint_bytes_total` and the gauge `nftproxy_endpoint_open_connections` (one
/// conntrack dump per family and scrape), labelled `namespace`, `service`, `port` (its name, or
/// its number when unnamed), `endpoint` (`address:port`), `node` and `local`. At most
/// `limit` endpoints are exported (0: all); the rest are counted in
/// `nftproxy_endpoint_metrics_dropped`, and the first scrape that drops any says so in the log.
public final class EndpointTrafficMetrics: @unchecked Sendable {
    public static let connectionsName = "nftproxy_endpoint_connections_total"
    public static let packetsName = "nftproxy_endpoint_packets_total"
    public static let bytesName = "nftproxy_endpoint_bytes_total"
    public static let openName = "nftproxy_endpoint_open_connections"
    public static let droppedName = "nftproxy_endpoint_metrics_dropped"
    /// The default of `--endpoint-metrics-limit`: 30,000 series.
    public static let defaultLimit = 10_000

    /// Where the tables are read: the network namespace the daemon programs.
    public let networkNamespace: String?
    /// The most endpoints exported; 0: no limit.
    public let limit: Int
    private let logger: Logger?
    private let lock = NSLock()
    private var warned = false

    public init(networkNamespace: String?, limit: Int = EndpointTrafficMetrics.defaultLimit, logger: Logger? = nil) {
        self.networkNamespace = networkNamespace; self.limit = limit; self.logger = logger
    }

    /// The metrics in the Prometheus text format, from the kernel as it is now; a read that
    /// fails leaves them out and says why in a comment.
    public func render() -> String {
        do {
            let kernel = try NetlinkKernel(networkNamespace: networkNamespace)
            let reader = KernelReader(socket: kernel.client.socket)
            var tables: [Table] = []
            for family in TableFamily.allCases {
                if let readBack = try reader.read(family, RulesetLayout.tableName) { tables.append(readBack.table) }
            }
            let ruleset = Ruleset(tables: tables)
            let open = try kernel.openConnections(to: Set(ProgrammedFrontend.read(ruleset).keys))
            let rendered = Self.text(ServicePortTraffic.group(FrontendTraffic.read(ruleset, open: open)), limit: limit)
            if rendered.dropped > 0 { warnOnce(dropped: rendered.dropped) }
            return rendered.text
        } catch {
            return "# \(Self.connectionsName): reading the kernel's tables failed: \(error)\n"
        }
    }

    private func warnOnce(dropped: Int) {
        lock.lock()
        let first = !warned
        warned = true
        lock.unlock()
        if first {
            logger?.warning("""
                endpoint metrics reached --endpoint-metrics-limit \(limit): \(dropped) endpoints left out \
                (\(Self.droppedName) counts them; nftproxy stats shows all)
                """)
        }
    }

    /// The text of the metrics for `groups`, with at most `limit` endpoints (0: all), and
    /// how many endpoints were left out.
    public static func text(_ groups: [ServicePortTraffic], limit: Int = 0) -> (text: String, dropped: Int) {
        var samples: [(labels: String, endpoint: EndpointCount)] = []
        var dropped = 0
        for group in groups {
            guard let service = group.service else { continue }
            for endpoint in group.endpoints {
                guard limit == 0 || samples.count < limit else { dropped += 1; continue }
                let node = endpoint.names?.node ?? ""
                let local = endpoint.names?.local ?? false
                let labels = "namespace=\"\(escaped(service.namespace))\",service=\"\(escaped(service.name))\","
                    + "port=\"\(escaped(portLabel(group)))\",endpoint=\"\(escaped(endpoint.target))\","
                    + "node=\"\(escaped(node))\",local=\"\(local)\""
                samples.append((labels, endpoint))
            }
        }
        var out = ""
        let families: [(String, String, KeyPath<EndpointCount, UInt64>)] = [
            (connectionsName, "New connections the kernel balanced to each endpoint of a service port.", \.connections),
            (packetsName, "Packets of the flows balanced to each endpoint, both directions.", \.packets),
            (bytesName, "Bytes of the flows balanced to each endpoint, both directions.", \.bytes),
        ]
        for (name, help, value) in families {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
            for sample in samples { out += "\(name){\(sample.labels)} \(sample.endpoint[keyPath: value])\n" }
        }
        let open = samples.filter { $0.endpoint.open != nil }
        if !open.isEmpty {
            out += "# HELP \(openName) Connections to each endpoint that conntrack holds open now.\n# TYPE \(openName) gauge\n"
            for sample in open { out += "\(openName){\(sample.labels)} \(sample.endpoint.open ?? 0)\n" }
        }
        out += "# HELP \(droppedName) Endpoints left out of the endpoint metrics by --endpoint-metrics-limit.\n"
        out += "# TYPE \(droppedName) gauge\n\(droppedName) \(dropped)\n"
        return (out, dropped)
    }

    /// The port's name, or its number (the first frontend's) when it has none.
    static func portLabel(_ group: ServicePortTraffic) -> String {
        if !group.portName.isEmpty { return group.portName }
        let frontend = group.frontends.first { $0.kind != .nodePort } ?? group.frontends.first
        return frontend.map { String($0.key.port) } ?? ""
    }

    /// A label value as the text format wants it: backslash, quote and newline escaped.
    private static func escaped(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
