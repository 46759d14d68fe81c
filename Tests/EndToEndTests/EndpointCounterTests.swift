import Foundation
import XCTest
import Sandbox

/// Per-endpoint counters end to end: real connections through a NodePort and a ClusterIP of
/// node-1, then `nftproxy stats -o json` read from node-1's kernel must name, for every
/// endpoint, exactly the connections the echo servers answered, and packets and bytes of
/// both directions within what TCP adds (exactly, for UDP).
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

    /// What `stats -o json` says of one endpoint of one frontend.
    struct Counted: Equatable, CustomStringConvertible {
        var connections: UInt64, packets: UInt64, bytes: UInt64
        var node: String?, local: Bool?
        var description: String { "\(connections) conn, \(packets) pkts, \(bytes) B" }
    }

    /// The report of `stats -o json`, as far as the tests read it.
    struct Report: Decodable {
        struct ServicePort: Decodable {
            var namespace: String?, service: String?, port: String, family: String
            var frontends: [Frontend]
            var endpoints: [Endpoint]
        }
        struct Frontend: Decodable { var frontend: String; var endpoints: [Endpoint] }
        struct Endpoint: Decodable {
            var address: String, connections: UInt64, packets: UInt64, bytes: UInt64
            var node: String?, local: Bool?
            /// Connections conntrack holds open now.
            var open: UInt64?
        }
        var services: [ServicePort]
    }

    static func stats(_ s: ServiceSandbox) throws -> Report {
        // The last ACKs of closed connections may still be on their way.
        Thread.sleep(forTimeInterval: 0.3)
        let result = try CommandRunner().runChecked([s.nftproxy, "stats", "-o", "json", "--netns", s.node1.namespace],
                                                    timeout: .seconds(30))
        return try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
    }

    /// Per endpoint address of one frontend (NodePort 32000/tcp by default).
    private func counted(_ s: ServiceSandbox, frontend name: String = "NodePort 32000/tcp (IPv4)",
                         file: StaticString = #filePath, line: UInt = #line) throws -> [String: Counted] {
        let report = try Self.stats(s)
        let frontend = try XCTUnwrap(report.services.flatMap(\.frontends).first { $0.frontend == name },
                                     "stats has no \(name): \(report)", file: file, line: line)
        return Dictionary(frontend.endpoints.map {
            ($0.address, Counted(connections: $0.connections, packets: $0.packets, bytes: $0.bytes, node: $0.node, local: $0.local))
        }, uniquingKeysWith: { first, _ in first })
    }

    /// Per endpoint address of one frontend: the connections conntrack holds open now.
    private func open(_ s: ServiceSandbox, frontend name: String,
                      file: StaticString = #filePath, line: UInt = #line) throws -> [String: UInt64?] {
        let report = try Self.stats(s)
        let frontend = try XCTUnwrap(report.services.flatMap(\.frontends).first { $0.frontend == name },
                                     "stats has no \(name): \(report)", file: file, line: line)
        return Dictionary(frontend.endpoints.map { ($0.address, $0.open) }, uniquingKeysWith: { first, _ in first })
    }

    /// Asserts each endpoint's connections equal the echo servers' answers, and its packets
    /// and bytes lie within what `connections` TCP connections (handshake, one reply line,
    /// FINs and ACKs both ways) can make; `replyBytes` is the payload the servers sent.
    private func assertTCP(_ counts: [String: Counted], _ expected: [String: (connections: Int, replyBytes: Int)],
                           headers: Int, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(counts.keys), Set(expected.keys), what, file: file, line: line)
        print("endpoint counters, \(what): " + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "; "))
        for (address, want) in expected {
            guard let got = counts[address] else { continue }
            let c = UInt64(want.connections)
            XCTAssertEqual(got.connections, c, "\(what): connections of \(address)", file: file, line: line)
            // SYN, SYN-ACK, ACK, the reply, a FIN and its ACK each way: 8, a retransmission more; a
            // packet counted twice (on output and again on input) would make 16.
            XCTAssertTrue((7 * c...12 * c).contains(got.packets), "\(what): packets of \(address): \(got)", file: file, line: line)
            // Every packet carries the IP and TCP headers (up to 40 bytes of options on SYNs).
            let payload = UInt64(want.replyBytes)
            XCTAssertTrue((got.packets * UInt64(headers) + payload...got.packets * UInt64(headers + 40) + payload).contains(got.bytes),
                          "\(what): bytes of \(address): \(got), \(payload) bytes of replies", file: file, line: line)
        }
    }

    /// Connections and reply bytes per pod, from the echo outcomes.
    private func answered(_ outcomes: [EchoOutcome], _ pods: [Pod], ipv6: Bool = false) -> [String: (connections: Int, replyBytes: Int)] {
        var result: [String: (connections: Int, replyBytes: Int)] = [:]
        for pod in pods { result[pod.address(ipv6: ipv6)] = (0, 0) }
        for outcome in outcomes {
            guard case .reply(let name, let peer) = outcome, let pod = pods.first(where: { $0.name == name }) else { continue }
            let line = "\(name) \(peer)\n".utf8.count
            result[pod.address(ipv6: ipv6)]?.connections += 1
            result[pod.address(ipv6: ipv6)]?.replyBytes += line
        }
        return result
    }

    func testCountersMatchTheEchoServersAndSurviveChangesAndRestarts() throws {
        try ServiceSandbox.run { s in
            let echoPods = [s.pod(1), s.pod(2), s.pod(3)]
            let objects = Self.objects(s, echo: echoPods, other: [s.pod(2), s.pod(3), s.pod(4)])
            try s.apply(objects)
            let fresh = try counted(s)
            XCTAssertEqual(Set(fresh.keys), Set(echoPods.map(\.ipv4)))
            for (address, count) in fresh {
                XCTAssertEqual(count.connections + count.packets + count.bytes, 0, "fresh endpoints count nothing: \(address)")
            }
            // The names come from the kernel: the node of each endpoint and whether it is node-1.
            for pod in echoPods {
                XCTAssertEqual(fresh[pod.ipv4]?.node, pod.node)
                XCTAssertEqual(fresh[pod.ipv4]?.local, pod.node == SandboxLayout.node1.name)
            }

            let outcomes = try s.request(from: s.client, to: SandboxLayout.node1.lanIPv4, port: 32000, count: 30)
            XCTAssertEqual(tally(outcomes).values.reduce(0, +), 30, "every connection answered: \(outcomes)")
            let nodePort = try counted(s)
            assertTCP(nodePort, answered(outcomes, echoPods), headers: 40, "NodePort")
            // Closed (TIME_WAIT) connections are not open.
            XCTAssertEqual(try open(s, frontend: "NodePort 32000/tcp (IPv4)"),
                           Dictionary(uniqueKeysWithValues: echoPods.map { ($0.ipv4, UInt64(0)) }))

            // A ClusterIP, from node-1 itself (out through the output hook, replies through
            // input): counted on its own frontend, summed in the service port.
            let fromNode = try s.request(from: s.node1, to: Self.echoIP, port: 80, count: 20)
            XCTAssertEqual(tally(fromNode).values.reduce(0, +), 20, "every connection answered: \(fromNode)")
            assertTCP(try counted(s, frontend: "\(Self.echoIP):80/tcp"), answered(fromNode, echoPods), headers: 40, "ClusterIP")
            let report = try Self.stats(s)
            let port = try XCTUnwrap(report.services.first { $0.service == "echo-server" })
            XCTAssertEqual(port.namespace, "default")
            XCTAssertEqual(port.port, "http")
            XCTAssertEqual(port.endpoints.reduce(0) { $0 + $1.connections }, 50, "the port sums its frontends")
            let before = try counted(s)

            // Another service's endpoint changes (an incremental apply): echo-server's counters stay.
            try s.apply(Self.objects(s, echo: echoPods, other: [s.pod(1), s.pod(3), s.pod(4)]))
            XCTAssertEqual(try counted(s), before, "counters after another service's endpoint changed")
            // A fresh process applying the same objects adopts the tables: nothing is reset.
            try s.apply(Self.objects(s, echo: echoPods, other: [s.pod(1), s.pod(3), s.pod(4)]))
            XCTAssertEqual(try counted(s), before, "counters after a restart's apply")

            // The table form prints the same numbers.
            let table = try CommandRunner().runChecked([s.nftproxy, "stats", "--service", "default/echo-server",
                                                        "--netns", s.node1.namespace], timeout: .seconds(30)).stdout
            XCTAssertTrue(table.contains("default/echo-server port http (IPv4): 50 connections"), table)
            XCTAssertFalse(table.contains("default/other"), "--service shows one service: \(table)")
            let pod1 = try XCTUnwrap(port.endpoints.first { $0.address == s.pod(1).ipv4 })
            let row = table.split(separator: "\n").first { $0.contains("\(s.pod(1).ipv4):8080") }.map(String.init) ?? ""
            XCTAssertEqual(row.split(separator: " ").dropFirst(3).prefix(3).map(String.init),
                           ["\(pod1.connections)", "\(pod1.packets)", "\(pod1.bytes)"], table)

            // pod-3 leaves echo-server: its counters are gone from the kernel. The service moves
            // to another bucket; the others keep their connections, packets and bytes.
            try s.apply(Self.objects(s, echo: [s.pod(1), s.pod(2)], other: [s.pod(1), s.pod(3), s.pod(4)]))
            let after = try counted(s)
            XCTAssertEqual(Set(after.keys), [s.pod(1).ipv4, s.pod(2).ipv4], "after pod-3 was removed")
            for pod in [s.pod(1), s.pod(2)] {
                XCTAssertEqual(after[pod.ipv4]?.connections, before[pod.ipv4]?.connections, "connections kept across the bucket move")
                XCTAssertEqual(after[pod.ipv4]?.packets, before[pod.ipv4]?.packets, "packets kept across the bucket move")
                XCTAssertEqual(after[pod.ipv4]?.bytes, before[pod.ipv4]?.bytes, "bytes kept across the bucket move")
            }
            // Pairs appear only in the NodePort counting sets (of the NodePort's shard): twice each.
            let listed = try s.node1.runChecked(["nft", "list", "table", "ip", "nftproxy"]).stdout
            XCTAssertFalse(listed.contains("tcp . 32000 . \(s.pod(3).ipv4) . 8080"), "pod-3's elements are gone: \(listed)")
            XCTAssertEqual(listed.components(separatedBy: "tcp . 32000 . \(s.pod(1).ipv4) . 8080").count - 1, 2,
                           "pod-1's stay, in the connections and the traffic set: \(listed)")
            // pod-3 comes back: it starts from zero.
            try s.apply(Self.objects(s, echo: echoPods, other: [s.pod(1), s.pod(3), s.pod(4)]))
            XCTAssertEqual(try counted(s)[s.pod(3).ipv4]?.connections, 0, "a returning endpoint starts from zero")
        }
    }

    /// UDP (every request a flow of its own: one packet each way, counted exactly) and IPv6.
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
            let udpOutcomes = try s.request(from: s.client, .udp, to: SandboxLayout.node1.lanIPv4, port: 32053, count: 20)
            XCTAssertEqual(tally(udpOutcomes).values.reduce(0, +), 20, "every UDP request answered: \(udpOutcomes)")
            var expected: [String: Counted] = [:]
            for (address, got) in answered(udpOutcomes, [s.pod(2), s.pod(3)]) {
                // "ping\n" out, the reply line back, each with 20 + 8 bytes of IPv4 and UDP headers.
                let requests = UInt64(got.connections)
                expected[address] = Counted(connections: requests, packets: 2 * requests,
                                            bytes: requests * (2 * 28 + 5) + UInt64(got.replyBytes))
            }
            let udp = try counted(s, frontend: "NodePort 32053/udp (IPv4)")
            XCTAssertEqual(udp.mapValues { Counted(connections: $0.connections, packets: $0.packets, bytes: $0.bytes) }, expected)
            // Every request is a flow of its own that conntrack keeps until its timeout: all open.
            XCTAssertEqual(try open(s, frontend: "NodePort 32053/udp (IPv4)"), expected.mapValues { $0.connections })

            let tcp6 = try s.request(from: s.client, to: SandboxLayout.node1.lanIPv6, port: 32060, count: 20)
            XCTAssertEqual(tally(tcp6).values.reduce(0, +), 20, "every IPv6 connection answered: \(tcp6)")
            assertTCP(try counted(s, frontend: "NodePort 32060/tcp (IPv6)"), answered(tcp6, pods, ipv6: true),
                      headers: 60, "IPv6 NodePort")
            let v4 = try counted(s, frontend: "NodePort 32060/tcp (IPv4)")
            XCTAssertEqual(Set(v4.keys), Set(pods.map(\.ipv4)))
            XCTAssertTrue(v4.values.allSatisfy { $0.connections + $0.packets == 0 }, "the IPv4 NodePort saw nothing: \(v4)")
        }
    }
}
