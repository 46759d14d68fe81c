import ArgumentParser
import Foundation
import Nftables
import ProxyCompiler

/// `nftproxy stats`: how this node's kernel spread connections over each frontend's
/// endpoints, read from the per-element counters of the backends maps (no input, no API).
struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show each endpoint's connections, as counted by this node's kernel, per frontend.",
        discussion: """
            Frontends are named by address:port/protocol (NodePorts by port); the counts are the \
            connections the kernel DNATed to each endpoint since its element was added (a frontend \
            whose endpoint count changes starts again from zero). Needs tables applied with \
            --endpoint-counters (the default).
            """)

    @OptionGroup var namespace: NamespaceOptions

    @Option(name: .customShort("o"), help: "table or json.")
    var output = "table"

    @Option(help: ArgumentHelp("Print again every SECONDS until interrupted.", valueName: "seconds"))
    var watch: Double?

    func validate() throws {
        if !["table", "json"].contains(output) { throw ValidationError("-o: \(output) is neither table nor json") }
        if let watch, !(watch > 0) { throw ValidationError("--watch: \(watch) is not a positive number of seconds") }
    }

    func run() throws {
        while true {
            let traffic = FrontendTraffic.read(try readTables())
            let text = output == "json" ? TrafficReport.json(traffic) : TrafficReport.table(traffic)
            // Written at once (not buffered), so that a --watch reader sees each report when it is made.
            FileHandle.standardOutput.write(Data((text + "\n").utf8))
            guard let watch else { return }
            Thread.sleep(forTimeInterval: watch)
        }
    }

    /// Our tables as the kernel holds them, with their elements' counters.
    private func readTables() throws -> Ruleset {
        do {
            let client = try NftablesClient(networkNamespace: namespace.networkNamespace)
            let reader = KernelReader(socket: client.socket)
            var tables: [Table] = []
            for family in TableFamily.allCases {
                guard let readBack = try reader.read(family, RulesetLayout.tableName) else { continue }
                if let uncounted = readBack.table.sets.first(where: { $0.isMap && !$0.counter
                    && ($0.name.hasPrefix(RulesetLayout.SetName.serviceBackendsPrefix)
                        || $0.name.hasPrefix(RulesetLayout.SetName.nodePortBackendsPrefix)) }) {
                    printError("warning: table \(readBack.table.qualifiedName): map \(uncounted.name) has no counters "
                               + "(applied with --endpoint-counters=false?): its endpoints show 0")
                }
                tables.append(readBack.table)
            }
            if tables.isEmpty { printError("warning: the kernel holds no nftproxy table") }
            return Ruleset(tables: tables)
        } catch {
            printError("nftproxy: error: reading the kernel's tables: \(error)")
            throw ExitCode(1)
        }
    }
}

/// The text and JSON forms of `nftproxy stats`.
enum TrafficReport {
    /// One block per frontend: each endpoint's connections, share and a bar, then the spread.
    static func table(_ frontends: [FrontendTraffic]) -> String {
        if frontends.isEmpty { return "no frontend with endpoints" }
        var lines: [String] = []
        for frontend in frontends {
            lines.append("\(frontend.key) (\(frontend.kind.rawValue)): \(frontend.totalConnections) connections")
            let width = frontend.endpoints.map { endpointText($0).count }.max() ?? 0
            let countWidth = frontend.endpoints.map { String($0.connections).count }.max() ?? 1
            for endpoint in frontend.endpoints {
                let share = frontend.share(of: endpoint)
                let name = endpointText(endpoint).padding(toLength: width, withPad: " ", startingAt: 0)
                let count = String(repeating: " ", count: countWidth - String(endpoint.connections).count)
                    + String(endpoint.connections)
                let percent = String(format: "%5.1f%%", share * 100)
                lines.append("  \(name)  \(count)  \(percent)  \(String(repeating: "#", count: Int((share * 40).rounded())))")
            }
            if let deviation = frontend.largestDeviation {
                lines.append(String(format: "  largest deviation from a uniform spread: %.2f standard deviations", deviation))
            }
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ frontends: [FrontendTraffic]) -> String {
        let entries = frontends.map { frontend in
            JSONFrontend(frontend: frontend.key.description, family: frontend.key.family == .v4 ? "ipv4" : "ipv6",
                         address: frontend.key.address.map { "\($0)" }, protocol: "\(frontend.key.transport)",
                         port: frontend.key.port, kind: frontend.kind.rawValue, connections: frontend.totalConnections,
                         largestDeviation: frontend.largestDeviation,
                         endpoints: frontend.endpoints.map {
                             JSONEndpoint(address: $0.address, port: $0.port, connections: $0.connections,
                                          share: frontend.share(of: $0))
                         })
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(JSONReport(frontends: entries)) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    private static func endpointText(_ endpoint: EndpointCount) -> String {
        endpoint.address.contains(":") ? "[\(endpoint.address)]:\(endpoint.port)" : "\(endpoint.address):\(endpoint.port)"
    }

    private struct JSONReport: Encodable { var frontends: [JSONFrontend] }
    private struct JSONFrontend: Encodable {
        var frontend: String
        var family: String
        var address: String?
        var `protocol`: String
        var port: UInt16
        var kind: String
        var connections: UInt64
        var largestDeviation: Double?
        var endpoints: [JSONEndpoint]
    }
    private struct JSONEndpoint: Encodable {
        var address: String
        var port: UInt16
        var connections: UInt64
        var share: Double
    }
}
