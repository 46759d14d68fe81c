import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KubeAPIStandIn
import Sandbox
import XCTest

/// `nftproxy run` against the project's stand-in API server (HTTPS, token, real list and
/// watch protocol), programming node-1 of a sandbox, with real traffic: the first lists
/// are programmed, a new Service and a removed endpoint reach the kernel through watch
/// events, a malformed object is logged while the last good state stays, health and
/// metrics are served, SIGTERM leaves the rules in place, and a new daemon adopts them
/// without a flush.
final class DaemonTests: XCTestCase {
    override func setUpWithError() throws {
        EndToEndSuite.enroll(self)
        try requireRoot()
    }

    private static func service(_ name: String, ip: String, nodePort: Int) -> [String: Any] {
        ["apiVersion": "v1", "kind": "Service",
         "metadata": ["name": name, "namespace": "default", "labels": ["app": name]],
         "spec": ["type": "NodePort", "clusterIP": ip, "clusterIPs": [ip],
                  "ports": [["name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": nodePort]]]]
    }

    private static func slice(_ name: String, service: String, pods: [Pod]) -> [String: Any] {
        ["apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
         "metadata": ["name": name, "namespace": "default",
                      "annotations": ["endpoints.kubernetes.io/last-change-trigger-time": Self.now()],
                      "labels": ["kubernetes.io/service-name": service,
                                 "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"]],
         "ports": [["name": "http", "protocol": "TCP", "port": 8080]],
         "endpoints": pods.map { pod -> [String: Any] in
             ["addresses": [pod.ipv4], "conditions": ["ready": true, "serving": true, "terminating": false],
              "nodeName": pod.node]
         }]
    }

    /// The current time as the control plane writes trigger times (RFC 3339).
    private static func now() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }

    /// GET on loopback, blocking; nil when nothing answers.
    private func get(_ port: Int, _ path: String) -> (status: Int, body: String)? {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, String)?
        let task = URLSession.shared.dataTask(with: URL(string: "http://127.0.0.1:\(port)\(path)")!) { data, response, _ in
            if let http = response as? HTTPURLResponse { result = (http.statusCode, String(decoding: data ?? Data(), as: UTF8.self)) }
            done.signal()
        }
        task.resume()
        _ = done.wait(timeout: .now() + 5)
        return result
    }

    /// Polls `condition` every 50 ms for up to `limit`; the time it took, or nil.
    private func poll(_ limit: Duration = .seconds(15), _ condition: () throws -> Bool) rethrows -> Duration? {
        let clock = ContinuousClock(), start = clock.now
        while clock.now - start < limit {
            if try condition() { return clock.now - start }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return nil
    }

    func testDaemonFollowsTheAPIAndSurvivesARestart() async throws {
        let api = try await DaemonAPI.start("daemon-test", token: "daemon-token", tokenInFile: true)
        defer { api.removeDirectory() }
        let server = api.server, kubeconfig = api.kubeconfig
        let healthPort = try freeLoopbackPort()
        var metricsPort = try freeLoopbackPort()
        while metricsPort == healthPort { metricsPort = try freeLoopbackPort() }

        try ServiceSandbox.run { s in
            _ = try server.put(.services, object: Self.service("echo", ip: "198.18.0.10", nodePort: 32000))
            _ = try server.put(.endpointSlices, object: Self.slice("echo-1", service: "echo", pods: [s.pod(1), s.pod(2)]))
            let arguments = [s.nftproxy, "run", "--kubeconfig", kubeconfig, "--netns", s.node1.namespace,
                             "--min-sync-period", "0", "--healthz-bind-address", "127.0.0.1:\(healthPort)",
                             "--metrics-bind-address", "127.0.0.1:\(metricsPort)"] + ServiceSandbox.nodeOptions
            var daemon = try BackgroundProcess(arguments)
            defer { daemon.stop() }

            let started = poll { get(healthPort, "/healthz")?.status == 200 }
            XCTAssertNotNil(started, "never healthy: \(daemon.stderr)")
            print("daemon: healthy \(started.map { "\($0)" } ?? "never") after start")
            assertReplies(try s.request(from: s.client, to: ServiceTests.nodeIPv4, port: 32000, count: 40),
                          from: ServiceTests.sources([s.pod(1), s.pod(2)], all: ServiceTests.masq4), "first lists programmed")

            // A Service appears: traffic follows.
            _ = try server.put(.services, object: Self.service("web", ip: "198.18.0.11", nodePort: 32001))
            _ = try server.put(.endpointSlices, object: Self.slice("web-1", service: "web", pods: [s.pod(3)]))
            let appeared = try poll { try s.request(from: s.client, to: ServiceTests.nodeIPv4, port: 32001).first?.name == "pod-3" }
            XCTAssertNotNil(appeared, "a new Service never reached the kernel: \(daemon.stderr)")
            print("daemon: a new Service answered \(appeared.map { "\($0)" } ?? "never") after its objects were stored")

            // A malformed EndpointSlice: logged, the last good version stays.
            var broken = Self.slice("echo-1", service: "echo", pods: [s.pod(1)])
            broken["ports"] = [["name": "http", "protocol": "TCP", "port": 70000]]
            _ = try server.put(.endpointSlices, object: broken)
            XCTAssertNotNil(poll { daemon.stderr.contains("malformed object ignored") }, daemon.stderr)
            assertReplies(try s.request(from: s.client, to: ServiceTests.nodeIPv4, port: 32000, count: 40),
                          from: ServiceTests.sources([s.pod(1), s.pod(2)], all: ServiceTests.masq4),
                          "after a malformed event: the last good endpoints")

            // The next good event: pod-2 leaves, traffic stops reaching it.
            _ = try server.put(.endpointSlices, object: Self.slice("echo-1", service: "echo", pods: [s.pod(1)]))
            XCTAssertNotNil(try poll {
                try s.request(from: s.client, to: ServiceTests.nodeIPv4, port: 32000, count: 10).allSatisfy { $0.name == "pod-1" }
            }, daemon.stderr)

            // Health, liveness and metrics as kube-proxy serves them.
            let healthz = try XCTUnwrap(get(healthPort, "/healthz"))
            XCTAssertEqual(healthz.status, 200)
            XCTAssertTrue(healthz.body.contains(#""nodeEligible": true"#), healthz.body)
            XCTAssertEqual(get(healthPort, "/livez")?.status, 200)
            let metrics = try XCTUnwrap(get(metricsPort, "/metrics")).body
            for name in ["kubeproxy_sync_proxy_rules_duration_seconds_count", "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                         "kubeproxy_sync_proxy_rules_endpoint_changes_total", "kubeproxy_sync_proxy_rules_service_changes_total",
                         "nftproxy_kernel_operations_total", #"nftproxy_syncs_total{path="incremental""#,
                         "kubeproxy_network_programming_duration_seconds_bucket"] {
                XCTAssertTrue(metrics.contains(name), "\(name) missing from /metrics:\n\(metrics)")
            }

            let programmed = metrics.split(separator: "\n")
                .first { $0.hasPrefix("kubeproxy_network_programming_duration_seconds_count") }
            XCTAssertNotEqual(programmed.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0, 0,
                              "no endpoint change was timed from its trigger time: \(programmed ?? "no count")")

            // SIGTERM: a prompt exit that leaves the rules.
            daemon.signal(SIGTERM)
            XCTAssertTrue(daemon.wait(timeout: .seconds(10)), "did not stop after SIGTERM")
            XCTAssertEqual(daemon.exitStatus, 0, daemon.stderr)
            XCTAssertEqual(try s.nodeTables(), ["table ip nftproxy", "table ip6 nftproxy"])
            XCTAssertEqual(try s.request(from: s.client, to: ServiceTests.nodeIPv4, port: 32001).first?.name, "pod-3",
                           "traffic stopped with the daemon")

            // A new daemon adopts the kernel's state: its first sync commits nothing.
            daemon = try BackgroundProcess(arguments)
            XCTAssertNotNil(poll { get(healthPort, "/healthz")?.status == 200 }, daemon.stderr)
            let restarted = try XCTUnwrap(get(metricsPort, "/metrics")).body
            XCTAssertTrue(restarted.contains("nftproxy_kernel_operations_total 0"), restarted)
            XCTAssertTrue(restarted.contains(#"nftproxy_syncs_total{path="full",reason="first-apply"} 1"#), restarted)

            // Endpoint counters survive the restart (adopted elements keep them) and /metrics
            // shows what `nftproxy stats` reads, labelled with the service's names: pod-3
            // answered at least two connections to web's NodePort 32001.
            let labels = #"{namespace="default",service="web",port="http",endpoint="\#(s.pod(3).ipv4):8080","#
                + #"node="\#(s.pod(3).node)",local="\#(s.pod(3).node == SandboxLayout.node1.name)"} "#
            func sample(_ name: String) -> UInt64? {
                let prefix = name + labels
                return restarted.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { UInt64($0.dropFirst(prefix.count)) }
            }
            let counted = try XCTUnwrap(sample("nftproxy_endpoint_connections_total"), "no web sample in /metrics:\n\(restarted)")
            XCTAssertGreaterThanOrEqual(counted, 2)
            let packets = try XCTUnwrap(sample("nftproxy_endpoint_packets_total"), restarted)
            let bytes = try XCTUnwrap(sample("nftproxy_endpoint_bytes_total"), restarted)
            XCTAssertGreaterThanOrEqual(packets, 5 * counted, "both directions of every connection: \(restarted)")
            XCTAssertGreaterThan(bytes, 40 * packets, restarted)
            XCTAssertTrue(restarted.contains("nftproxy_endpoint_metrics_dropped 0"), restarted)
            let stats = try CommandRunner().runChecked([s.nftproxy, "stats", "-o", "json", "--service", "default/web",
                                                        "--netns", s.node1.namespace], timeout: .seconds(30)).stdout
            let services = (try JSONSerialization.jsonObject(with: Data(stats.utf8)) as? [String: Any])?["services"] as? [[String: Any]]
            XCTAssertEqual(services?.count, 1, "--service keeps one service: \(stats)")
            let endpoint = (services?.first?["endpoints"] as? [[String: Any]])?.first
            XCTAssertEqual((endpoint?["connections"] as? NSNumber)?.uint64Value, counted, "stats and /metrics disagree: \(stats)")
            XCTAssertEqual((endpoint?["packets"] as? NSNumber)?.uint64Value, packets, "stats and /metrics disagree: \(stats)")
            XCTAssertEqual((endpoint?["bytes"] as? NSNumber)?.uint64Value, bytes, "stats and /metrics disagree: \(stats)")
        }
        await server.shutdown()
    }
}
