import Foundation
import XCTest
import Sandbox

/// Per-endpoint connection counters end to end: real TCP connections through a NodePort
/// of node-1, then `nftproxy stats -o json` read from node-1's kernel must name, for every
/// endpoint, exactly the connections the echo servers answered.
final class EndpointCounterTests: XCTestCase {
    override func setUpWithError() throws {
        EndToEndSuite.enroll(self)
        try requireRoot()
    }

    static let echoIP = "198.18.0.10"       // NodePort 32000 -> 8080 on the given pods
    static let otherIP = "198.18.0.20"      // NodePort 32020 -> 8080 on the given pods

    static func objects(_ s: ServiceSandbox, echo: [Pod], other: [Pod]) -> String {
        typealias Port = KubeYAML.Port
        return KubeYAML.stream([
            KubeYAML.service("echo-server", type: "NodePort", clusterIPs: [echoIP],
                             ports: [Port(name: "http", port: 80, targetPort: "8080", nodePort: 32000)]),
            KubeYAML.endpointSlice("echo-server-x1", service: "echo-server", ports: [("http", "TCP", 8080)], pods: echo),
            KubeYAML.service("other", type: "NodePort", clusterIPs: [otherIP],
                             ports: [Port(name: "http", port: 80, targetPort: "8080", nodePort: 32020)]),
            KubeYAML.endpointSlice("other-x1", service: "other", ports: [("http", "TCP", 8080)], pods: other),
        ])
    }

    /// Connections per endpoint address of one frontend (NodePort 32000/tcp by default), as `stats -o json` prints them.
    private func counted(_ s: ServiceSandbox, frontend name: String = "NodePort 32000/tcp (IPv4)",
                         file: StaticString = #filePath, line: UInt = #line) throws -> [String: UInt64] {
        let result = try CommandRunner().runChecked([s.nftproxy, "stats", "-o", "json", "--netns", s.node1.namespace],
                                                    timeout: .seconds(30))
        struct Report: Decodable {
            struct Frontend: Decodable { var frontend: String; var endpoints: [Endpoint] }
            struct Endpoint: Decodable { var address: String; var connections: UInt64 }
            var frontends: [Frontend]
        }
        let report = try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
        let frontend = try XCTUnwrap(report.frontends.first { $0.frontend == name },
                                     "stats has no \(name): \(result.stdout)", file: file, line: line)
        return Dictionary(frontend.endpoints.map { ($0.address, $0.connections) }, uniquingKeysWith: +)
    }

    func testConnectionCountersMatchTheEchoServersAndFollowEndpointChanges() throws {
        try ServiceSandbox.run { s in
            let echoPods = [s.pod(1), s.pod(2), s.pod(3)]
            try s.apply(Self.objects(s, echo: echoPods, other: [s.pod(2), s.pod(3), s.pod(4)]))
            XCTAssertEqual(try counted(s), Dictionary(uniqueKeysWithValues: echoPods.map { ($0.ipv4, 0) }),
                           "fresh endpoints count nothing")

            let outcomes = try s.request(from: s.client, to: SandboxLayout.node1.lanIPv4, port: 32000, count: 30)
            let replies = tally(outcomes)
            XCTAssertEqual(replies.values.reduce(0, +), 30, "every connection answered: \(outcomes)")
            var expected: [String: UInt64] = [:]
            for pod in echoPods { expected[pod.ipv4] = UInt64(replies[pod.name] ?? 0) }
            XCTAssertEqual(try counted(s), expected, "kernel counters against the echo servers' answers")

            // Another service's endpoint changes (same count, so the same backends map):
            // an incremental apply that must leave echo-server's counters alone.
            try s.apply(Self.objects(s, echo: echoPods, other: [s.pod(1), s.pod(3), s.pod(4)]))
            XCTAssertEqual(try counted(s), expected, "counters after another service's endpoint changed")

            // pod-3 leaves echo-server: its counter is gone, the service starts a new count.
            try s.apply(Self.objects(s, echo: [s.pod(1), s.pod(2)], other: [s.pod(1), s.pod(3), s.pod(4)]))
            XCTAssertEqual(try counted(s), [s.pod(1).ipv4: 0, s.pod(2).ipv4: 0], "after pod-3 was removed")
            let more = tally(try s.request(from: s.client, to: SandboxLayout.node1.lanIPv4, port: 32000, count: 10))
            XCTAssertEqual(try counted(s), [s.pod(1).ipv4: UInt64(more[s.pod(1).name] ?? 0),
                                            s.pod(2).ipv4: UInt64(more[s.pod(2).name] ?? 0)],
                           "counting again after the change: \(more)")
        }
    }

    /// UDP (every request is a flow of its own) and IPv6 count the same way.
    func testUDPAndIPv6CountersMatchTheEchoServers() throws {
        try ServiceSandbox.run { s in
            typealias Port = KubeYAML.Port
            let pods = [s.pod(2), s.pod(3), s.pod(4)]
            try s.apply(KubeYAML.stream([
                KubeYAML.service("dns", type: "NodePort", clusterIPs: ["198.18.0.53"],
                                 ports: [Port(name: "dns", proto: "UDP", port: 53, targetPort: "5353", nodePort: 32053)]),
                KubeYAML.endpointSlice("dns-x1", service: "dns", ports: [("dns", "UDP", 5353)], pods: [s.pod(2), s.pod(3)]),
                KubeYAML.service("dual", type: "NodePort", clusterIPs: ["198.18.0.60", "2001:db8:18::10"],
                                 ports: [Port(name: "web", port: 80, targetPort: "8080", nodePort: 32060)]),
                KubeYAML.endpointSlice("dual-v4", service: "dual", ports: [("web", "TCP", 8080)], pods: pods),
                KubeYAML.endpointSlice("dual-v6", service: "dual", ipv6: true, ports: [("web", "TCP", 8080)], pods: pods),
            ]))
            let udp = tally(try s.request(from: s.client, .udp, to: SandboxLayout.node1.lanIPv4, port: 32053, count: 20))
            XCTAssertEqual(udp.values.reduce(0, +), 20, "every UDP request answered: \(udp)")
            XCTAssertEqual(try counted(s, frontend: "NodePort 32053/udp (IPv4)"),
                           [s.pod(2).ipv4: UInt64(udp[s.pod(2).name] ?? 0), s.pod(3).ipv4: UInt64(udp[s.pod(3).name] ?? 0)])

            let tcp6 = tally(try s.request(from: s.client, to: SandboxLayout.node1.lanIPv6, port: 32060, count: 20))
            XCTAssertEqual(tcp6.values.reduce(0, +), 20, "every IPv6 connection answered: \(tcp6)")
            var expected: [String: UInt64] = [:]
            for pod in pods { expected[pod.ipv6] = UInt64(tcp6[pod.name] ?? 0) }
            XCTAssertEqual(try counted(s, frontend: "NodePort 32060/tcp (IPv6)"), expected)
            XCTAssertEqual(try counted(s, frontend: "NodePort 32060/tcp (IPv4)"),
                           Dictionary(uniqueKeysWithValues: pods.map { ($0.ipv4, 0) }), "the IPv4 NodePort saw nothing")
        }
    }
}
