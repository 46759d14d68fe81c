import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KubeAPIStandIn
import Sandbox
import XCTest

/// `nftproxy run` through what an API server and a node do to it: a 410 Expired inside
/// the watch stream, dropped watches, an API server restart, a rotated token, a foreign
/// writer flushing one of our chains (repaired by the periodic full sync), and SIGKILL
/// (the rules stay, a new daemon adopts them). After each, a change made through the API
/// reaches the kernel, shown by real traffic.
final class DaemonResilienceTests: XCTestCase {
    override func setUpWithError() throws {
        EndToEndSuite.enroll(self)
        try requireRoot()
    }


    private func get(_ port: Int, _ path: String) -> String? {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var body: String?
        URLSession.shared.dataTask(with: URL(string: "http://127.0.0.1:\(port)\(path)")!) { data, response, _ in
            if (response as? HTTPURLResponse)?.statusCode == 200 { body = String(decoding: data ?? Data(), as: UTF8.self) }
            done.signal()
        }.resume()
        _ = done.wait(timeout: .now() + 5)
        return body
    }

    private func poll(_ limit: Duration = .seconds(20), _ condition: () throws -> Bool) rethrows -> Bool {
        let clock = ContinuousClock(), start = clock.now
        while clock.now - start < limit {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    private static func slice(_ pods: [Pod]) -> [String: Any] {
        ["apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
         "metadata": ["name": "echo-1", "namespace": "default", "labels": ["kubernetes.io/service-name": "echo"]],
         "ports": [["name": "http", "protocol": "TCP", "port": 8080]],
         "endpoints": pods.map { ["addresses": [$0.ipv4], "conditions": ["ready": true], "nodeName": $0.node] }]
    }

    /// The daemon died: the rest of the test would only time out.
    struct DaemonStopped: Error {}

    func testDaemonSurvivesTheAPIServerAndForeignWriters() throws {
        let api = try blocking { try await DaemonAPI.start("resilience", token: "token-a", tokenInFile: true) }
        defer { api.removeDirectory() }
        let server = api.server, kubeconfig = api.kubeconfig
        let tokenFile = try XCTUnwrap(api.tokenFile)
        defer { try? blocking { await server.shutdown() } }
        let metricsPort = try freeLoopbackPort()

        try ServiceSandbox.run { s in
            _ = try server.put(.services, object: [
                "apiVersion": "v1", "kind": "Service", "metadata": ["name": "echo", "namespace": "default"],
                "spec": ["type": "NodePort", "clusterIP": "198.18.0.10",
                         "ports": [["name": "http", "protocol": "TCP", "port": 80, "nodePort": 32000]]]])
            _ = try server.put(.endpointSlices, object: Self.slice([s.pod(1)]))
            let arguments = [s.nftproxy, "run", "--kubeconfig", kubeconfig, "--netns", s.node1.namespace,
                             "--min-sync-period", "0", "--sync-period", "2s", "--healthz-bind-address", "127.0.0.1:0",
                             "--metrics-bind-address", "127.0.0.1:\(metricsPort)"] + ServiceSandbox.nodeOptions
            var daemon = try BackgroundProcess(arguments)
            defer { daemon.stop() }

            /// Moves the service to exactly `pods` through the API and waits until every
            /// connection reaches one of them.
            func converge(_ pods: [Pod], _ what: String) throws {
                guard daemon.isRunning else {
                    XCTFail("\(what): the daemon is not running:\n\(daemon.stderr.suffix(3000))")
                    throw DaemonStopped()
                }
                _ = try server.put(.endpointSlices, object: Self.slice(pods))
                let names = Set(pods.map(\.name))
                let reached = try poll {
                    let outcomes = try s.request(from: s.client, to: ServiceTests.nodeIPv4, port: 32000, count: 6)
                    return outcomes.allSatisfy { $0.name.map(names.contains) ?? false }
                }
                XCTAssertTrue(reached, "\(what): never converged on \(names.sorted())\n\(daemon.stderr.suffix(3000))")
            }

            try converge([s.pod(1)], "first lists")

            XCTAssertGreaterThan(server.expireWatches(), 0, "no watch was open")
            try converge([s.pod(2)], "after 410 Expired inside the stream")
            XCTAssertTrue(get(metricsPort, "/metrics")?.contains("nftproxy_relists_total{resource=\"endpointslices\"}") ?? false)

            XCTAssertGreaterThan(server.dropWatches(), 0)
            try converge([s.pod(3)], "after dropped watches")

            try blocking { try await server.restart() }
            try converge([s.pod(1), s.pod(2)], "after an API server restart")

            server.setTokens(["token-b"])
            try Data("token-b".utf8).write(to: URL(fileURLWithPath: tokenFile))
            try converge([s.pod(2), s.pod(3)], "after the token was rotated")

            // A foreign writer empties our dispatch chain: NodePort traffic stops reaching
            // the pods until the periodic full sync (every 2 s here) repairs the chain.
            _ = try s.node1.runChecked(["nft", "flush", "chain", "ip", "nftproxy", "services"])
            let flushed = try s.node1.runChecked(["nft", "list", "chain", "ip", "nftproxy", "services"]).stdout
            XCTAssertFalse(flushed.contains("vmap"), "the flush did not take: \(flushed)")
            let repaired = try poll {
                try s.request(from: s.client, to: ServiceTests.nodeIPv4, port: 32000, count: 3).allSatisfy { $0.name != nil }
            }
            XCTAssertTrue(repaired, "the periodic full sync did not repair the flushed chain")
            XCTAssertTrue(get(metricsPort, "/metrics")?.contains(#"nftproxy_syncs_total{path="full",reason="#) ?? false)

            // SIGKILL: no chance to clean up; the rules stay and keep serving, and a new
            // daemon adopts them with a sync that commits nothing.
            daemon.signal(SIGKILL)
            XCTAssertTrue(daemon.wait(timeout: .seconds(10)))
            assertReplies(try s.request(from: s.client, to: ServiceTests.nodeIPv4, port: 32000, count: 20),
                          from: ServiceTests.sources([s.pod(2), s.pod(3)], all: ServiceTests.masq4), "while no daemon runs")
            daemon = try BackgroundProcess(arguments)
            XCTAssertTrue(poll { get(metricsPort, "/metrics")?.contains(#"reason="first-apply"} 1"#) ?? false },
                          daemon.stderr)
            XCTAssertTrue(get(metricsPort, "/metrics")?.contains("nftproxy_kernel_operations_total 0") ?? false,
                          "the restarted daemon changed the kernel: \(get(metricsPort, "/metrics") ?? "")")
            try converge([s.pod(1)], "after SIGKILL and a restart")
        }
    }
}
