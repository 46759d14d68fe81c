import ArgumentParser
import Foundation
import Nftables
import ProxyCompiler
import ProxyDaemon
import ProxyEngine

/// `nftproxy stats`: how this node's kernel spread traffic over each service port's
/// endpoints, read from the per-element counters of the `endpoint-connections-N` and
/// `endpoint-traffic-N` sets, the names element comments give and the connections conntrack holds
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
                if !readBack.table.sets.contains(where: { EndpointTrafficLayout.measure(ofSet: $0.name) != nil }) {
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

    /// `{"services": [...]}`: per service port its frontends (each with its endpoints) and
    /// its endpoints summed over them. Written directly (keys in alphabetical order, one
    /// endpoint per line): at 100,000 endpoints `JSONEncoder` took a second.
    static func json(_ groups: [ServicePortTraffic]) -> String {
        var out = "{\"services\": ["
        for (index, group) in groups.enumerated() {
            out += index == 0 ? "\n" : ",\n"
            out += "  {\"connections\": \(group.totalConnections), \"endpoints\": "
            endpoints(group.endpoints, share: group.share(of:), into: &out, indent: "    ")
            out += ", \"family\": \"\(group.family == .v4 ? "ipv4" : "ipv6")\", \"frontends\": ["
            for (position, frontend) in group.frontends.enumerated() {
                out += position == 0 ? "\n    " : ",\n    "
                out += "{\"address\": \(string(frontend.key.address.map { "\($0)" })), \"endpoints\": "
                endpoints(frontend.endpoints, share: frontend.share(of:), into: &out, indent: "      ")
                out += ", \"frontend\": \(string(frontend.key.description)), \"kind\": \"\(frontend.kind.rawValue)\", "
                out += "\"port\": \(frontend.key.port), \"protocol\": \"\(frontend.key.transport)\"}"
            }
            out += "]"
            if let deviation = group.largestDeviation, deviation.isFinite { out += ", \"largestDeviation\": \(deviation)" }
            out += ", \"namespace\": \(string(group.service?.namespace)), \"port\": \(string(group.portName))"
            out += ", \"service\": \(string(group.service?.name))}"
        }
        out += groups.isEmpty ? "]}" : "\n]}"
        return out
    }

    private static func endpoints(_ list: [EndpointCount], share: (EndpointCount) -> Double, into out: inout String,
                                  indent: String) {
        out += "["
        for (index, endpoint) in list.enumerated() {
            out += (index == 0 ? "\n" : ",\n") + indent
            out += "{\"address\": \(string(endpoint.address)), \"bytes\": \(endpoint.bytes), "
            out += "\"connections\": \(endpoint.connections)"
            if let local = endpoint.names?.local { out += ", \"local\": \(local)" }
            if let node = endpoint.names?.node { out += ", \"node\": \(string(node))" }
            if let open = endpoint.open { out += ", \"open\": \(open)" }
            out += ", \"packets\": \(endpoint.packets), \"port\": \(endpoint.port), \"share\": \(share(endpoint))}"
        }
        out += "]"
    }

    /// A JSON string, or null.
    private static func string(_ value: String?) -> String {
        value.map(JSONLogHandler.quote) ?? "null"
    }
}
