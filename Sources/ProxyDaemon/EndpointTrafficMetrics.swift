import Foundation
import Logging
import Nftables
import ProxyCompiler
import ProxyEngine
import ServiceModel

/// Per-endpoint traffic metrics, read from the kernel at scrape time: one dump of each
/// counting set (`endpoint-connections-N`, `endpoint-traffic-N` and their NodePort twins,
/// docs/ruleset.md "Endpoint counters"), not a request per endpoint. The frontends, their
/// endpoints and names come from the map the daemon last programmed (``programmed(_:node:)``),
/// compiled to frontends as the ruleset has them; before the first sync, from a read-back
/// of the whole table, whose element comments name service, port and node. Counts are
/// summed over a port's frontends.
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
    /// The map last programmed and the node it was programmed for; nil before the first sync.
    private var programmedState: (map: ServiceMap, node: NodeConfig)?
    /// Its frontends and endpoints with their names, once a scrape needed them (a scrape
    /// after the next sync computes them again).
    private var programmedEndpoints: ProgrammedEndpoints?
    /// Counts the maps programmed, so a late computation does not replace a newer one.
    private var programmedVersion = 0

    public init(networkNamespace: String?, limit: Int = EndpointTrafficMetrics.defaultLimit, logger: Logger? = nil) {
        self.networkNamespace = networkNamespace; self.limit = limit; self.logger = logger
    }

    /// The daemon programmed `map` for `node` (a sync succeeded): the next scrapes name
    /// their counts from it.
    public func programmed(_ map: ServiceMap, node: NodeConfig) {
        lock.withLock {
            programmedState = (map, node)
            programmedEndpoints = nil
            programmedVersion &+= 1
        }
    }

    /// The metrics in the Prometheus text format, from the kernel as it is now; a read that
    /// fails leaves them out and says why in a comment.
    public func render() -> String {
        var text = ""
        render(appendingTo: &text)
        return text
    }

    /// The same, appended to `body` (the rest of `/metrics`), which at 100,000 endpoints
    /// saves copying tens of megabytes.
    public func render(appendingTo body: inout String) {
        do {
            let clock = ContinuousClock()
            let start = clock.now
            let kernel = try NetlinkKernel(networkNamespace: networkNamespace)
            let traffic = try read(kernel)
            let read = clock.now
            let groups = ServicePortTraffic.group(traffic)
            let dropped = Self.append(groups, limit: limit, to: &body)
            if dropped > 0 { warnOnce(dropped: dropped) }
            logger?.debug("endpoint metrics scraped", metadata: [
                "endpoints": "\(traffic.reduce(0) { $0 + $1.endpoints.count })", "dropped": "\(dropped)",
                "readSeconds": "\(Self.seconds(start.duration(to: read)))",
                "renderSeconds": "\(Self.seconds(read.duration(to: clock.now)))",
            ])
        } catch {
            body += "# \(Self.connectionsName): reading the kernel's tables failed: \(error)\n"
        }
    }

    /// Every frontend's endpoints with their counts and open connections.
    func read(_ kernel: NetlinkKernel) throws -> [FrontendTraffic] {
        let reader = KernelReader(socket: kernel.client.socket)
        var tables: [Table] = []
        let traffic: [FrontendTraffic]
        if let programmed = programmed() {
            for family in TableFamily.allCases {
                if let table = try reader.readSets(family, RulesetLayout.tableName,
                                                   where: { EndpointTrafficLayout.measure(ofSet: $0) != nil }) {
                    tables.append(table)
                }
            }
            traffic = programmed.traffic(counted: Ruleset(tables: tables))
        } else {
            for family in TableFamily.allCases {
                if let readBack = try reader.read(family, RulesetLayout.tableName) { tables.append(readBack.table) }
            }
            traffic = FrontendTraffic.read(Ruleset(tables: tables))
        }
        let open = try kernel.openConnections(to: Set(traffic.map(\.key)))
        return traffic.map { $0.adding(open: open) }
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// The endpoints of the map last programmed; nil before the first sync.
    private func programmed() -> ProgrammedEndpoints? {
        let (state, known, version) = lock.withLock { (programmedState, programmedEndpoints, programmedVersion) }
        guard let state else { return nil }
        if let known { return known }
        // Outside the lock: a sync meanwhile replaces the state, and the next scrape computes anew.
        let computed = ProgrammedEndpoints(state.map, node: state.node)
        lock.withLock { if programmedVersion == version { programmedEndpoints = computed } }
        return computed
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
        var text = ""
        let dropped = append(groups, limit: limit, to: &text)
        return (text, dropped)
    }

    /// Appends the text of the metrics for `groups` to `out`; returns how many endpoints
    /// `limit` left out.
    static func append(_ groups: [ServicePortTraffic], limit: Int, to out: inout String) -> Int {
        var samples: [(labels: String, endpoint: EndpointCount)] = []
        var dropped = 0
        for group in groups {
            guard let service = group.service else { continue }
            // The labels every endpoint of the port shares, escaped once.
            let shared = "namespace=\"\(escaped(service.namespace))\",service=\"\(escaped(service.name))\","
                + "port=\"\(escaped(portLabel(group)))\",endpoint=\""
            for endpoint in group.endpoints {
                guard limit == 0 || samples.count < limit else { dropped += 1; continue }
                let node = endpoint.names?.node ?? ""
                let local = endpoint.names?.local ?? false
                samples.append((shared + escaped(endpoint.target) + "\",node=\"" + escaped(node)
                                + (local ? "\",local=\"true\"" : "\",local=\"false\""), endpoint))
            }
        }
        out.reserveCapacity(out.utf8.count + samples.count * 4 * (samples.first.map { $0.labels.utf8.count + 60 } ?? 0) + 1024)
        let families: [(String, String, KeyPath<EndpointCount, UInt64>)] = [
            (connectionsName, "New connections the kernel balanced to each endpoint of a service port.", \.connections),
            (packetsName, "Packets of the flows balanced to each endpoint, both directions.", \.packets),
            (bytesName, "Bytes of the flows balanced to each endpoint, both directions.", \.bytes),
        ]
        for (name, help, value) in families {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
            for sample in samples {
                out += name; out += "{"; out += sample.labels; out += "} "
                out += String(sample.endpoint[keyPath: value]); out += "\n"
            }
        }
        if samples.contains(where: { $0.endpoint.open != nil }) {
            out += "# HELP \(openName) Connections to each endpoint that conntrack holds open now.\n# TYPE \(openName) gauge\n"
            for sample in samples {
                guard let open = sample.endpoint.open else { continue }
                out += openName; out += "{"; out += sample.labels; out += "} "; out += String(open); out += "\n"
            }
        }
        out += "# HELP \(droppedName) Endpoints left out of the endpoint metrics by --endpoint-metrics-limit.\n"
        out += "# TYPE \(droppedName) gauge\n\(droppedName) \(dropped)\n"
        return dropped
    }

    /// The port's name, or its number (the first frontend's) when it has none.
    static func portLabel(_ group: ServicePortTraffic) -> String {
        if !group.portName.isEmpty { return group.portName }
        let frontend = group.frontends.first { $0.kind != .nodePort } ?? group.frontends.first
        return frontend.map { String($0.key.port) } ?? ""
    }

    /// A label value as the text format wants it: backslash, quote and newline escaped.
    private static func escaped(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n") })
        else { return value }
        return value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
