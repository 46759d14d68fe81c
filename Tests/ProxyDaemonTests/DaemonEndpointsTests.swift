import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOCore
import ProxyDaemon
import XCTest

/// The health and metrics ports over real HTTP on loopback.
final class DaemonEndpointsTests: XCTestCase {
    private func get(_ port: Int, _ path: String) async throws -> (status: Int, headers: [String: String], body: String) {
        let url = try XCTUnwrap(URL(string: "http://127.0.0.1:\(port)\(path)"))
        let (data, response) = try await URLSession.shared.data(from: url)
        let http = try XCTUnwrap(response as? HTTPURLResponse)
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields { headers["\(key)".lowercased()] = "\(value)" }
        return (http.statusCode, headers, String(decoding: data, as: UTF8.self))
    }

    func testHealthAndMetricsPorts() async throws {
        let health = ProxyHealth(healthTimeout: .seconds(60))
        let metrics = ProxyMetrics()
        let endpoints = DaemonEndpoints(health: health, metrics: metrics)
        let healthServer = try await HTTPEndpointServer.start(host: "127.0.0.1", port: 0, responder: endpoints.healthPort)
        let metricsServer = try await HTTPEndpointServer.start(host: "127.0.0.1", port: 0, responder: endpoints.metricsPort)
        let healthPort = try XCTUnwrap(healthServer.localAddress?.port)
        let metricsPort = try XCTUnwrap(metricsServer.localAddress?.port)

        var answer = try await get(healthPort, "/healthz")
        XCTAssertEqual(answer.status, 503, "not synced yet")
        XCTAssertEqual(answer.headers["content-type"], "application/json")
        XCTAssertEqual(answer.headers["x-content-type-options"], "nosniff")
        XCTAssertTrue(answer.body.contains(#""healthy": false"#), answer.body)

        health.updated()
        answer = try await get(healthPort, "/healthz")
        XCTAssertEqual(answer.status, 200)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
        XCTAssertEqual(object["nodeEligible"] as? Bool, true)
        XCTAssertNotNil(object["lastUpdated"] as? String)
        XCTAssertNotNil(object["currentTime"] as? String)

        health.setNodeEligible(false)
        let notEligible = try await get(healthPort, "/healthz").status
        let live = try await get(healthPort, "/livez").status
        let onMetricsPort = try await get(metricsPort, "/healthz").status
        let unknown = try await get(healthPort, "/other").status
        XCTAssertEqual([notEligible, live, onMetricsPort, unknown], [503, 200, 503, 404])

        let scraped = try await get(metricsPort, "/metrics")
        XCTAssertEqual(scraped.status, 200)
        XCTAssertTrue(scraped.body.contains(#"kubeproxy_proxy_healthz_total{code="503"} 3"#), scraped.body)
        XCTAssertTrue(scraped.body.contains(#"kubeproxy_proxy_healthz_total{code="200"} 1"#), scraped.body)
        XCTAssertTrue(scraped.body.contains(#"kubeproxy_proxy_livez_total{code="200"} 1"#), scraped.body)
        XCTAssertTrue(scraped.body.contains("kubeproxy_sync_proxy_rules_nftables_sync_failures_total 0"), scraped.body)
        await healthServer.close()
        await metricsServer.close()
    }
}
