import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import KubeAPIStandIn
import Sandbox
import XCTest

/// Health-check node ports end to end: two `nftproxy run` daemons against the stand-in API
/// server, one programming node-1 and one node-2, and curl in the external client asking
/// each node's health-check node port as a cloud load balancer would.
final class HealthCheckNodePortTests: XCTestCase {
    override func setUpWithError() throws {
        EndToEndSuite.enroll(self)
        try requireRoot()
    }

    private static let node2Options = [
        "--node-name", SandboxLayout.node2.name,
        "--node-ip", SandboxLayout.node2.lanIPv4, "--node-ip", SandboxLayout.node2.lanIPv6,
        "--cluster-cidr", SandboxLayout.clusterIPv4CIDR, "--cluster-cidr", SandboxLayout.clusterIPv6CIDR,
    ]

    private static func service(_ name: String = "lb-local", healthCheckNodePort: Int, number: Int = 10) -> [String: Any] {
        ["apiVersion": "v1", "kind": "Service",
         "metadata": ["name": name, "namespace": "default"],
         "spec": ["type": "LoadBalancer", "clusterIP": "198.18.2.\(number)", "clusterIPs": ["198.18.2.\(number)"],
                  "externalTrafficPolicy": "Local", "healthCheckNodePort": healthCheckNodePort,
                  "ports": [["name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 32200 + number]]],
         "status": ["loadBalancer": ["ingress": [["ip": "203.0.113.2\(number)"]]]]]
    }

    private static func slice(_ service: String = "lb-local", pods: [Pod]) -> [String: Any] {
        ["apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
         "metadata": ["name": "\(service)-1", "namespace": "default",
                      "labels": ["kubernetes.io/service-name": service]],
         "ports": [["name": "http", "protocol": "TCP", "port": 8080]],
         "endpoints": pods.map { pod -> [String: Any] in
             ["addresses": [pod.ipv4], "conditions": ["ready": true, "serving": true, "terminating": false],
              "nodeName": pod.node]
         }]
    }

    /// What curl in the client got from `address:port`; nil when the connection was refused.
    private struct Answer {
        var status: Int
        var headers: [String: String]
        var body: [String: Any]
        var localEndpoints: Int? { body["localEndpoints"] as? Int }
    }

    private func probe(_ s: ServiceSandbox, _ address: String, _ port: Int) throws -> Answer? {
        var result = try s.client.run(["curl", "-sS", "-i", "--max-time", "3", "http://\(address):\(port)/any/path"])
        // A connection accepted just as its server closes is reset (56) or gets nothing (52): ask again.
        for _ in 0..<5 where [52, 56].contains(result.status) {
            Thread.sleep(forTimeInterval: 0.1)
            result = try s.client.run(["curl", "-sS", "-i", "--max-time", "3", "http://\(address):\(port)/any/path"])
        }
        if result.status == 7 { return nil }  // curl: failed to connect (refused)
        XCTAssertEqual(result.status, 0, "curl: \(result)")
        let text = result.stdout.replacingOccurrences(of: "\r\n", with: "\n")
        let parts = text.components(separatedBy: "\n\n")
        var lines = parts[0].split(separator: "\n").map(String.init)
        let statusLine = lines.isEmpty ? "" : lines.removeFirst()
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let bodyText = parts.dropFirst().joined(separator: "\n\n")
        let body = (try? JSONSerialization.jsonObject(with: Data(bodyText.utf8))) as? [String: Any]
        XCTAssertNotNil(body, "not JSON: \(bodyText)")
        return Answer(status: status, headers: headers, body: body ?? [:])
    }

    /// Polls `condition` every 100 ms for up to `limit`; true once it held.
    private func poll(_ limit: Duration = .seconds(15), _ condition: () throws -> Bool) rethrows -> Bool {
        let clock = ContinuousClock(), start = clock.now
        while clock.now - start < limit {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }

    /// The value of the sample `name` (with its labels) on the metrics port `port`.
    private func metric(_ port: Int, _ name: String) -> Double? {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var body: String?
        URLSession.shared.dataTask(with: URL(string: "http://127.0.0.1:\(port)/metrics")!) { data, _, _ in
            body = data.map { String(decoding: $0, as: UTF8.self) }
            done.signal()
        }.resume()
        _ = done.wait(timeout: .now() + 5)
        return body?.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.dropFirst(name.count + 1)) }
    }

    func testHealthCheckNodePortFollowsTheLocalEndpoints() async throws {
        let api = try await DaemonAPI.start("healthcheck-test", token: "daemon-token", tokenInFile: true)
        defer { api.removeDirectory() }
        let server = api.server, kubeconfig = api.kubeconfig
        var ports: Set<Int> = []
        while ports.count < 4 { ports.insert(try freeLoopbackPort()) }
        let loopbackPorts = Array(ports)
        let node1IP = SandboxLayout.node1.lanIPv4, node2IP = SandboxLayout.node2.lanIPv4
        let metricsName = #"kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy="external"}"#

        try ServiceSandbox.run { s in
            _ = try server.put(.services, object: Self.service(healthCheckNodePort: 32510))
            _ = try server.put(.endpointSlices, object: Self.slice(pods: [s.pod(2)]))
            func daemon(_ namespace: String, _ options: [String], health: Int, metrics: Int) throws -> BackgroundProcess {
                try BackgroundProcess([s.nftproxy, "run", "--kubeconfig", kubeconfig, "--netns", namespace,
                                       "--min-sync-period", "0", "--healthz-bind-address", "127.0.0.1:\(health)",
                                       "--metrics-bind-address", "127.0.0.1:\(metrics)"] + options)
            }
            let node1 = try daemon(s.node1.namespace, ServiceSandbox.nodeOptions, health: loopbackPorts[0], metrics: loopbackPorts[1])
            defer { node1.stop() }
            let node2 = try daemon(s.topology.node2.namespace, Self.node2Options, health: loopbackPorts[2], metrics: loopbackPorts[3])
            defer { node2.stop() }

            // pod-2 runs on node-1: node-1 says 200, node-2 503.
            XCTAssertTrue(try poll { try probe(s, node1IP, 32510)?.status == 200 }, "node-1 never answered 200: \(node1.stderr)")
            XCTAssertTrue(try poll { try probe(s, node2IP, 32510) != nil }, "node-2 never opened the port: \(node2.stderr)")
            let healthy = try XCTUnwrap(try probe(s, node1IP, 32510))
            XCTAssertEqual(healthy.status, 200)
            XCTAssertEqual(healthy.headers["content-type"], "application/json")
            XCTAssertEqual(healthy.headers["x-content-type-options"], "nosniff")
            XCTAssertEqual(healthy.headers["x-load-balancing-endpoint-weight"], "1")
            XCTAssertEqual(healthy.body["service"] as? [String: String], ["namespace": "default", "name": "lb-local"])
            XCTAssertEqual(healthy.localEndpoints, 1)
            XCTAssertEqual(healthy.body["serviceProxyHealthy"] as? Bool, true)
            let empty = try XCTUnwrap(try probe(s, node2IP, 32510))
            XCTAssertEqual(empty.status, 503)
            XCTAssertEqual(empty.headers["x-load-balancing-endpoint-weight"], "0")
            XCTAssertEqual(empty.localEndpoints, 0)
            XCTAssertEqual(empty.body["serviceProxyHealthy"] as? Bool, true)
            XCTAssertEqual(metric(loopbackPorts[1], metricsName), 0, "node-1 has its endpoint")
            XCTAssertEqual(metric(loopbackPorts[3], metricsName), 1, "node-2 drops the service's external traffic")
            // The external client's traffic agrees: node-1 serves the LB's NodePort.
            XCTAssertEqual(try s.request(from: s.client, to: node1IP, port: 32210).first,
                           .reply(name: "pod-2", peer: SandboxLayout.clientIPv4))

            // The endpoint moves to pod-4 on node-2: the answers swap.
            _ = try server.put(.endpointSlices, object: Self.slice(pods: [s.pod(4)]))
            XCTAssertTrue(try poll { try probe(s, node1IP, 32510)?.status == 503 }, "node-1 kept answering 200: \(node1.stderr)")
            XCTAssertEqual(try probe(s, node1IP, 32510)?.localEndpoints, 0)
            XCTAssertTrue(try poll { try probe(s, node2IP, 32510)?.status == 200 }, "node-2 never answered 200: \(node2.stderr)")
            XCTAssertEqual(try probe(s, node2IP, 32510)?.headers["x-load-balancing-endpoint-weight"], "1")
            XCTAssertTrue(poll { metric(loopbackPorts[1], metricsName) == 1 }, "node-1's metric")
            XCTAssertEqual(metric(loopbackPorts[3], metricsName), 0, "node-2's metric")

            // The port changes: the old one closes, the new one answers.
            _ = try server.put(.services, object: Self.service(healthCheckNodePort: 32511))
            XCTAssertTrue(try poll { try probe(s, node2IP, 32510) == nil && probe(s, node2IP, 32511)?.status == 200 },
                          "node-2 did not move to the new port: \(node2.stderr)")
            XCTAssertTrue(try poll { try probe(s, node1IP, 32510) == nil && probe(s, node1IP, 32511)?.status == 503 },
                          "node-1 did not move to the new port: \(node1.stderr)")

            // The Service goes: its port closes on both nodes.
            try server.delete(.services, namespace: "default", name: "lb-local")
            XCTAssertTrue(try poll { try probe(s, node1IP, 32511) == nil && probe(s, node2IP, 32511) == nil },
                          "the port stayed open after the Service was deleted")
            XCTAssertTrue(node1.stderr.contains("closed health-check node port"), node1.stderr)

            // A port something else holds on node-1: logged, the daemon goes on, and the next
            // sync after the port is free opens it.
            let blocker = try s.topology.spawn(in: s.node1, ["python3", "-c", """
                import socket, sys, time
                s = socket.socket(); s.bind(("\(node1IP)", 32520)); s.listen(); print("ready", flush=True)
                time.sleep(600)
                """])
            XCTAssertTrue(poll { blocker.stdout.contains("ready") }, "the blocker never listened: \(blocker.stderr)")
            _ = try server.put(.services, object: Self.service("lb-busy", healthCheckNodePort: 32520, number: 20))
            _ = try server.put(.endpointSlices, object: Self.slice("lb-busy", pods: [s.pod(1)]))
            XCTAssertTrue(poll { node1.stderr.contains("failed to start health-check node port") },
                          "no log of the port in use: \(node1.stderr)")
            XCTAssertTrue(try poll { try probe(s, node2IP, 32520)?.status == 503 }, "node-2 serves it: \(node2.stderr)")
            XCTAssertEqual(try s.request(from: s.client, to: node1IP, port: 32220).first,
                           .reply(name: "pod-1", peer: SandboxLayout.clientIPv4), "node-1 still programs the service")
            blocker.stop()
            _ = try server.put(.endpointSlices, object: Self.slice("lb-busy", pods: [s.pod(1), s.pod(3)]))
            XCTAssertTrue(try poll { try probe(s, node1IP, 32520)?.localEndpoints == 2 },
                          "node-1 never opened the freed port: \(node1.stderr)")
        }
        await server.shutdown()
    }
}
