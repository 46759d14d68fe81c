import Nftables
import ProxyCompiler

/// `nftproxy_endpoint_connections_total`, read from the kernel at scrape time: one read-back
/// of nftproxy's tables (a netlink dump per set, not a request per endpoint), whose backends
/// maps' per-element counters give each endpoint's connections (docs/ruleset.md, "Endpoint
/// counters"). Labels: the frontend (`198.18.0.10:80/tcp`, `NodePort 32000/tcp (IPv4)`), its
/// kind and the endpoint (`address:port`).
public struct EndpointTrafficMetrics: Sendable {
    public static let connectionsName = "nftproxy_endpoint_connections_total"
    /// Where the tables are read: the network namespace the daemon programs.
    public let networkNamespace: String?

    public init(networkNamespace: String?) { self.networkNamespace = networkNamespace }

    /// The metric in the Prometheus text format, from the kernel as it is now; a read that
    /// fails leaves the metric out and says why in a comment.
    public func render() -> String {
        do {
            let client = try NftablesClient(networkNamespace: networkNamespace)
            let reader = KernelReader(socket: client.socket)
            var tables: [Table] = []
            for family in TableFamily.allCases {
                if let readBack = try reader.read(family, RulesetLayout.tableName) { tables.append(readBack.table) }
            }
            return Self.text(FrontendTraffic.read(Ruleset(tables: tables)))
        } catch {
            return "# \(Self.connectionsName): reading the kernel's tables failed: \(error)\n"
        }
    }

    /// The text of the metric for `frontends`.
    public static func text(_ frontends: [FrontendTraffic]) -> String {
        var out = "# HELP \(connectionsName) New connections the kernel balanced to each endpoint of a frontend.\n"
        out += "# TYPE \(connectionsName) counter\n"
        for frontend in frontends {
            for endpoint in frontend.endpoints {
                let target = endpoint.address.contains(":") ? "[\(endpoint.address)]:\(endpoint.port)"
                    : "\(endpoint.address):\(endpoint.port)"
                out += "\(connectionsName){frontend=\"\(escaped(frontend.key.description))\",kind=\"\(frontend.kind.rawValue)\","
                    + "endpoint=\"\(escaped(target))\"} \(endpoint.connections)\n"
            }
        }
        return out
    }

    /// A label value as the text format wants it: backslash, quote and newline escaped.
    private static func escaped(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
