import Foundation
import Logging
import NIOCore
import Netlink
import Nftables
import ProxyCompiler
import ProxyEngine
import ServiceModel

/// Per-endpoint traffic metrics, read from the kernel at scrape time: one dump of each
/// counting set (`endpoint-connections-N`, `endpoint-traffic-N` and their NodePort twins,
/// docs/ruleset.md "Endpoint counters"), not a request per endpoint. The frontends, their
/// endpoints and names come from the map the daemon last programmed (``programmed(_:node:)``),
/// compiled to frontends as the ruleset has them: the first scrape after a sync turns them
/// into the series it exports (``EndpointTrafficSeries``, kept until the next sync), and
/// every scrape adds the counters it dumps to them by their keys' bytes. Before the first
/// sync the names come from a read-back of the whole table, whose element comments name
/// service, port and node. Counts are summed over a port's frontends.
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
    /// Its series, once a scrape needed them (a scrape after the next sync computes them again).
    private var series: EndpointTrafficSeries?
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
            series = nil
            programmedVersion &+= 1
        }
    }

    /// The metrics in the Prometheus text format, from the kernel as it is now; a read that
    /// fails leaves them out and says why in a comment.
    public func render() -> String {
        var buffer = ByteBuffer()
        render(into: &buffer)
        return String(buffer: buffer)
    }

    /// The same, written to `buffer` (the rest of `/metrics`): at 100,000 endpoints that is
    /// 56 MB of text, which is written straight into the buffer the reply is sent from.
    public func render(into buffer: inout ByteBuffer) {
        do {
            let clock = ContinuousClock()
            let start = clock.now
            let kernel = try NetlinkKernel(networkNamespace: networkNamespace)
            guard let series = programmedSeries() else {
                // Before the first sync: the names come from the tables read back.
                let groups = ServicePortTraffic.group(try readBack(kernel))
                let read = clock.now
                var text = ""
                let dropped = Self.append(groups, limit: limit, to: &text)
                buffer.writeString(text)
                scraped(endpoints: groups.reduce(0) { $0 + $1.endpoints.count }, dropped: dropped,
                        read: start.duration(to: read), render: read.duration(to: clock.now))
                return
            }
            let counts = try read(kernel, series)
            let read = clock.now
            series.write(counts, to: &buffer)
            scraped(endpoints: series.count + series.dropped, dropped: series.dropped,
                    read: start.duration(to: read), render: read.duration(to: clock.now))
        } catch {
            buffer.writeString("# \(Self.connectionsName): reading the kernel's tables failed: \(error)\n")
        }
    }

    /// Logs a scrape's times at debug level and, the first time endpoints are left out, warns.
    private func scraped(endpoints: Int, dropped: Int, read: Duration, render: Duration) {
        if dropped > 0 { warnOnce(dropped: dropped) }
        logger?.debug("endpoint metrics scraped", metadata: [
            "endpoints": "\(endpoints)", "dropped": "\(dropped)",
            "readSeconds": "\(Self.seconds(read))", "renderSeconds": "\(Self.seconds(render))",
        ])
    }

    /// Each series' counts: one dump of each counting set, one conntrack dump per family.
    /// The 64 sets are dumped on two sockets of their own at once, each set on one (the
    /// kernel's walk of a set and the reading of its elements then run on two CPUs for the
    /// time of a scrape).
    func read(_ kernel: NetlinkKernel, _ series: EndpointTrafficSeries) throws -> EndpointTrafficSeries.Counts {
        let reader = KernelReader(socket: kernel.client.socket)
        var sets: [(family: TableFamily, name: String, measure: EndpointTrafficLayout.Measure)] = []
        for family in TableFamily.allCases {
            for set in try reader.sets(family, RulesetLayout.tableName, selecting: EndpointTrafficLayout.measure(ofSet:)) ?? [] {
                sets.append((family, set.name, set.tag))
            }
        }
        // Each worker on a socket of its own.
        let (work, workers, namespace) = (sets, 2, networkNamespace)
        let collected = CollectedCounts(workers)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var counts = series.zeroCounts()
            do {
                let reader = KernelReader(socket: try NftablesClient(networkNamespace: namespace).socket)
                for set in stride(from: worker, to: work.count, by: workers).map({ work[$0] }) {
                    try reader.forEachCountedElement(set.family, RulesetLayout.tableName, set: set.name) { key, packets, bytes in
                        series.add(set.measure, key: key, family: set.family, packets: packets, bytes: bytes, to: &counts)
                    }
                }
                collected.store(worker, .success(counts))
            } catch {
                collected.store(worker, .failure(error))
            }
        }
        var counts = series.zeroCounts()
        for result in collected.results { counts.add(try result.get()) }
        series.add(try kernel.openConnections(to: series.frontendKeys), to: &counts)
        return counts
    }

    /// What each worker of a parallel read counted, or why it failed.
    private final class CollectedCounts: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [Result<EndpointTrafficSeries.Counts, any Error>]

        init(_ workers: Int) {
            stored = Array(repeating: .failure(NetlinkError.malformed("a parallel read did not finish")), count: workers)
        }

        func store(_ worker: Int, _ result: Result<EndpointTrafficSeries.Counts, any Error>) {
            lock.withLock { stored[worker] = result }
        }

        var results: [Result<EndpointTrafficSeries.Counts, any Error>] { lock.withLock { stored } }
    }

    /// Every frontend's endpoints with their counts and open connections, named from the
    /// tables read back (before the first sync, when the daemon has programmed nothing yet).
    func readBack(_ kernel: NetlinkKernel) throws -> [FrontendTraffic] {
        let reader = KernelReader(socket: kernel.client.socket)
        var tables: [Table] = []
        for family in TableFamily.allCases {
            if let readBack = try reader.read(family, RulesetLayout.tableName) { tables.append(readBack.table) }
        }
        let ruleset = Ruleset(tables: tables)
        let open = try kernel.openConnections(to: Set(ProgrammedFrontend.read(ruleset).keys))
        return FrontendTraffic.read(ruleset, open: open)
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// The series of the map last programmed; nil before the first sync.
    private func programmedSeries() -> EndpointTrafficSeries? {
        let (state, known, version) = lock.withLock { (programmedState, series, programmedVersion) }
        guard let state else { return nil }
        if let known { return known }
        // Outside the lock: a sync meanwhile replaces the state, and the next scrape computes anew.
        let clock = ContinuousClock()
        let start = clock.now
        let computed = EndpointTrafficSeries(ProgrammedEndpoints(state.map, node: state.node).ports, limit: limit)
        logger?.debug("endpoint metrics series computed", metadata: [
            "series": "\(computed.count)", "seconds": "\(Self.seconds(start.duration(to: clock.now)))",
        ])
        lock.withLock { if programmedVersion == version { series = computed } }
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
            let shared = Array(sharedLabels(service, port: group.portLabel).utf8)
            for endpoint in group.endpoints {
                guard limit == 0 || samples.count < limit else { dropped += 1; continue }
                var labels: [UInt8] = []
                appendLabels(shared: shared, target: endpoint.target, node: endpoint.names?.node,
                             local: endpoint.names?.local ?? false, to: &labels)
                samples.append((String(decoding: labels, as: UTF8.self), endpoint))
            }
        }
        out.reserveCapacity(out.utf8.count + samples.count * 4 * (samples.first.map { $0.labels.utf8.count + 60 } ?? 0) + 1024)
        for (name, help, value) in counterFamilies {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
            for sample in samples {
                out += name; out += "{"; out += sample.labels; out += "} "
                out += String(sample.endpoint[keyPath: value]); out += "\n"
            }
        }
        if samples.contains(where: { $0.endpoint.open != nil }) {
            out += "# HELP \(openName) \(openHelp)\n# TYPE \(openName) gauge\n"
            for sample in samples {
                guard let open = sample.endpoint.open else { continue }
                out += openName; out += "{"; out += sample.labels; out += "} "; out += String(open); out += "\n"
            }
        }
        out += droppedText(dropped)
        return dropped
    }

    /// The counter families: name, help text, and the count each exports.
    static var counterFamilies: [(name: String, help: String, value: KeyPath<EndpointCount, UInt64>)] {
        [(connectionsName, "New connections the kernel balanced to each endpoint of a service port.", \.connections),
         (packetsName, "Packets of the flows balanced to each endpoint, both directions.", \.packets),
         (bytesName, "Bytes of the flows balanced to each endpoint, both directions.", \.bytes)]
    }
    static let openHelp = "Connections to each endpoint that conntrack holds open now."

    /// The gauge of endpoints left out, with its help.
    static func droppedText(_ dropped: Int) -> String {
        "# HELP \(droppedName) Endpoints left out of the endpoint metrics by --endpoint-metrics-limit.\n"
            + "# TYPE \(droppedName) gauge\n\(droppedName) \(dropped)\n"
    }

    /// The labels every endpoint of a service port shares, escaped once, up to the endpoint's
    /// value: `namespace="…",service="…",port="…",endpoint="`.
    static func sharedLabels(_ service: ServiceName, port: String) -> String {
        "namespace=\"\(escaped(service.namespace))\",service=\"\(escaped(service.name))\","
            + "port=\"\(escaped(port))\",endpoint=\""
    }

    /// Appends one endpoint's labels, without braces, to `out`: the shared ones, then
    /// endpoint (`address:port`), node and local.
    static func appendLabels(shared: [UInt8], target: String, node: String?, local: Bool, to out: inout [UInt8]) {
        out.append(contentsOf: shared)
        out.append(contentsOf: escaped(target).utf8)
        out.append(contentsOf: "\",node=\"".utf8)
        out.append(contentsOf: escaped(node ?? "").utf8)
        out.append(contentsOf: (local ? "\",local=\"true\"" : "\",local=\"false\"").utf8)
    }

    /// A label value as the text format wants it: backslash, quote and newline escaped.
    private static func escaped(_ value: String) -> String {
        func needsEscape(_ bytes: some Sequence<UInt8>) -> Bool {
            bytes.contains { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n") }
        }
        // Scanned in place where the string is contiguous (100,000 labels per map).
        guard value.utf8.withContiguousStorageIfAvailable({ needsEscape($0) }) ?? needsEscape(value.utf8) else { return value }
        return value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
