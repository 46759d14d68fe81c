import NIOCore
import NIOHTTP1

/// The answers of the daemon's two HTTP ports, as kube-proxy serves them: the health port
/// (`/healthz`, `/livez`) and the metrics port (`/metrics`, and `/healthz` again).
public struct DaemonEndpoints: Sendable {
    public let health: ProxyHealth
    public let metrics: ProxyMetrics
    /// Per-endpoint counters read from the kernel at scrape time; nil: not served.
    public let endpointTraffic: EndpointTrafficMetrics?

    public init(health: ProxyHealth, metrics: ProxyMetrics, endpointTraffic: EndpointTrafficMetrics? = nil) {
        self.health = health
        self.metrics = metrics
        self.endpointTraffic = endpointTraffic
    }

    /// The health port: `/healthz` (503 while unhealthy or the node is not eligible) and
    /// `/livez` (503 while unhealthy).
    public func healthPort(_ method: HTTPMethod, _ path: String) -> HTTPReply {
        switch path {
        case "/healthz": return healthz()
        case "/livez": return livez()
        default: return HTTPReply(status: .notFound, headers: [("Content-Type", "text/plain")], body: "404 page not found\n")
        }
    }

    /// The metrics port: `/metrics` in the Prometheus text format, and `/healthz`.
    public func metricsPort(_ method: HTTPMethod, _ path: String) -> HTTPReply {
        switch path {
        case "/metrics":
            var body = ByteBuffer(string: metrics.render())
            endpointTraffic?.render(into: &body)
            // Reading the endpoint counters reads the tables back from the kernel: give what
            // that allocated back to the kernel too, or the resident set keeps its peak.
            if endpointTraffic != nil { FreeMemory.releaseUnusedPages() }
            return HTTPReply(status: .ok, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                             content: body)
        case "/healthz": return healthz()
        default: return HTTPReply(status: .notFound, headers: [("Content-Type", "text/plain")], body: "404 page not found\n")
        }
    }

    private func healthz() -> HTTPReply {
        let report = health.report()
        let status: HTTPResponseStatus = report.healthzHealthy ? .ok : .serviceUnavailable
        metrics.healthAnswered(livez: false, code: Int(status.code))
        return .json(status, report.body(includingNodeEligibility: true))
    }

    private func livez() -> HTTPReply {
        let report = health.report()
        let status: HTTPResponseStatus = report.healthy ? .ok : .serviceUnavailable
        metrics.healthAnswered(livez: true, code: Int(status.code))
        return .json(status, report.body(includingNodeEligibility: false))
    }
}
