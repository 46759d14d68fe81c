import ArgumentParser
import Foundation
import Nftables
import ProxyCompiler
import ProxyEngine

/// `nftproxy stats`: how this node's kernel spread traffic over each service port's
/// endpoints, read from the per-element counters of `endpoint-connections` and
/// `endpoint-traffic`, the names element comments give and the connections conntrack holds
/// open, with no input and no API.
struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show each endpoint's connections, packets and bytes, as counted by this node's kernel, per service port.",
        discussion: """
            Services, ports and endpoint nodes are named by the comments nftproxy keeps on the \
            elements of its dispatch and backends maps. Connections are those the kernel DNATed to each \
            endpoint since it became an endpoint of the frontend; packets and bytes count both \
            directions of those flows. Counts survive other changes of the service and restarts \
            of nftproxy, and go when the endpoint does. Each port's counts are summed over its \
            frontends (ClusterIP, externalIPs, LB IPs, NodePort). `open` is how many of its \
            connections conntrack holds open now (TCP being set up or established; UDP and SCTP \
            until their timeout). Needs tables applied with --endpoint-counters (the default).
            """)

    @OptionGroup var namespace: NamespaceOptions

    @Option(name: .customShort("o"), help: "table or json.")
    var output = "table"

    @Option(help: ArgumentHelp("Print again every SECONDS until interrupted.", valueName: "seconds"))
    var watch: Double?

    @Option(help: ArgumentHelp("Only this service.", valueName: "namespace/name"))
    var service: String?

    func validate() throws {
        if let service {
            let parts = service.split(separator: "/", omittingEmptySubsequences: false)
            if parts.count != 2 || parts.contains(where: \.isEmpty) {
                throw ValidationError("--service: \(service) is not namespace/name")
            }
        }
        if !["table", "json"].contains(output) { throw ValidationError("-o: \(output) is neither table nor json") }
        if let watch, !(watch > 0) { throw ValidationError("--watch: \(watch) is not a positive number of seconds") }
    }

    func run() throws {
        while true {
            let traffic = ServicePortTraffic.group(try readTraffic())
                .filter { group in service.map { group.service?.description == $0 } ?? true }
            let text = output == "json" ? TrafficReport.json(traffic) : TrafficReport.table(traffic)
            // Written at once (not buffered), so that a --watch reader sees each report when it is made.
            FileHandle.standardOutput.write(Data((text + "\n").utf8))
            guard let watch else { return }
            Thread.sleep(forTimeInterval: watch)
        }
    }

    /// Every frontend's endpoints with their counts: our tables as the kernel holds them,
    /// with their elements' counters, and the connections conntrack holds open.
    private func readTraffic() throws -> [FrontendTraffic] {
        do {
            let kernel = try NetlinkKernel(networkNamespace: namespace.networkNamespace)
            let reader = KernelReader(socket: kernel.client.socket)
            var tables: [Table] = []
            for family in TableFamily.allCases {
                guard let readBack = try reader.read(family, RulesetLayout.tableName) else { continue }
                if !readBack.table.sets.contains(where: { $0.name == EndpointTrafficLayout.serviceSet }) {
                    printError("warning: table \(readBack.table.qualifiedName) has no endpoint counters "
                               + "(applied with --endpoint-counters=false?): its endpoints show 0, without names")
                }
                tables.append(readBack.table)
            }
            if tables.isEmpty { printError("warning: the kernel holds no nftproxy table") }
            let ruleset = Ruleset(tables: tables)
            let open = try kernel.openConnections(to: Set(ProgrammedFrontend.read(ruleset).keys))
            return FrontendTraffic.read(ruleset, open: open)
        } catch {
            printError("nftproxy: error: reading the kernel's tables: \(error)")
            throw ExitCode(1)
        }
    }
}

/// The text and JSON forms of `nftproxy stats`.
enum TrafficReport {
    /// One block per service port: each endpoint's connections, packets, bytes, share of
    /// connections with a bar, then how far the spread is from uniform.
    static func table(_ groups: [ServicePortTraffic]) -> String {
        if groups.isEmpty { return "no service with endpoints" }
        var lines: [String] = []
        for group in groups {
            let frontends = group.frontends.map { "\($0.key)" }.joined(separator: ", ")
            lines.append("\(group.title): \(group.totalConnections) connections via \(frontends)")
            let rows = group.endpoints.map { endpoint -> [String] in
                return [endpoint.target, endpoint.names.map { $0.node ?? "?" } ?? "?",
                        endpoint.names.map { $0.local ? "yes" : "no" } ?? "?", String(endpoint.connections), String(endpoint.packets),
                        String(endpoint.bytes), endpoint.open.map { String($0) } ?? "?",
                        String(format: "%5.1f%%", group.share(of: endpoint) * 100)]
            }
            let header = ["endpoint", "node", "local", "connections", "packets", "bytes", "open", "share"]
            let widths = header.indices.map { column in
                ([header] + rows).map { $0[column].count }.max() ?? 0
            }
            func line(_ cells: [String]) -> String {
                cells.indices.map { column in
                    let pad = String(repeating: " ", count: widths[column] - cells[column].count)
                    return column < 3 ? cells[column] + pad : pad + cells[column]
                }.joined(separator: "  ")
            }
            lines.append("  " + line(header))
            for (endpoint, row) in zip(group.endpoints, rows) {
                let bar = String(repeating: "#", count: Int((group.share(of: endpoint) * 40).rounded()))
                lines.append("  " + line(row) + "  " + bar)
            }
            if let deviation = group.largestDeviation {
                lines.append(String(format: "  largest deviation from a uniform spread: %.2f standard deviations", deviation)
                             + (deviation > 3 ? " (unlikely for uniform balancing)" : ""))
            }
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ groups: [ServicePortTraffic]) -> String {
        let entries = groups.map { group in
            JSONServicePort(
                namespace: group.service?.namespace, service: group.service?.name, port: group.portName,
                family: group.family == .v4 ? "ipv4" : "ipv6", connections: group.totalConnections,
                largestDeviation: group.largestDeviation,
                frontends: group.frontends.map { frontend in
                    JSONFrontend(frontend: frontend.key.description, address: frontend.key.address.map { "\($0)" },
                                 protocol: "\(frontend.key.transport)", port: frontend.key.port, kind: frontend.kind.rawValue,
                                 endpoints: frontend.endpoints.map { JSONEndpoint($0, share: frontend.share(of: $0)) })
                },
                endpoints: group.endpoints.map { JSONEndpoint($0, share: group.share(of: $0)) })
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(JSONReport(services: entries)) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    private struct JSONReport: Encodable { var services: [JSONServicePort] }
    private struct JSONServicePort: Encodable {
        var namespace: String?
        var service: String?
        var port: String
        var family: String
        var connections: UInt64
        var largestDeviation: Double?
        var frontends: [JSONFrontend]
        var endpoints: [JSONEndpoint]
    }
    private struct JSONFrontend: Encodable {
        var frontend: String
        var address: String?
        var `protocol`: String
        var port: UInt16
        var kind: String
        var endpoints: [JSONEndpoint]
    }
    private struct JSONEndpoint: Encodable {
        var address: String
        var port: UInt16
        var node: String?
        var local: Bool?
        var connections: UInt64
        var packets: UInt64
        var bytes: UInt64
        /// Connections conntrack holds open now.
        var open: UInt64?
        var share: Double

        init(_ endpoint: EndpointCount, share: Double) {
            address = endpoint.address; port = endpoint.port
            node = endpoint.names?.node; local = endpoint.names?.local
            connections = endpoint.connections; packets = endpoint.packets; bytes = endpoint.bytes
            open = endpoint.open
            self.share = share
        }
    }
}
