import Foundation
import XCTest
import Sandbox

/// Services end to end: `nftproxy apply` programs node-1 of a sandbox topology, and real
/// TCP/UDP connections from the external client, from pods and from node-1 itself show
/// which pod answered and which source address it saw. One kind of traffic of docs/ruleset.md's
/// "Packet paths" table (or one option of `apply`) per test.
///
/// Expected sources: "kept" is the client's own address; "masqueraded" is node-1's address
/// on the way to the endpoint: 198.19.1.1 / 2001:db8:1:1::1 (cbr0) for pods on node-1, its
/// LAN address 192.0.2.10 / 2001:db8:0:2::10 for pod-4 on node-2.
///
/// Every attempt has a 1 s timeout (2 s where an answer must come at once and the test
/// measures that it did); there are no retries: every outcome is deterministic except
/// which endpoint the kernel picks, and the assertions about that are bounded in
/// probability (see `assertReplies` and `testNodePortBalanceIsWithinBinomialBound`).
final class ServiceTests: XCTestCase {
    override func setUpWithError() throws {
        EndToEndSuite.enroll(self)
        try requireRoot()
    }

    // MARK: Fixture

    static let echoServerIP = "198.18.0.10"     // NodePort 32000, "http" -> 8080 on pod-1..3 (as the example)
    static let backendIP = "198.18.0.20"        // NodePort 32020, 80 -> 8080 on pod-2, pod-3 and pod-4 (node-2)
    static let hairpinIP = "198.18.0.30"        // 80/TCP and 80/UDP -> 8080 on pod-1 only
    static let emptyIP = "198.18.0.40"          // no endpoints: 80/TCP (NodePort 32040), 53/UDP (NodePort 32041)
    static let dnsIP = "198.18.0.53"            // 53/UDP -> 5353 on pod-2, pod-3, NodePort 32053/UDP
    static let dualIPv4 = "198.18.0.60"         // dual-stack, NodePort 32060, 80 -> 8080 on pod-2..4
    static let dualIPv6 = "2001:db8:18::10"
    static let publicIP = "198.18.0.70"         // LoadBalancer, NodePort 32070, 80 -> 8080 on pod-1..3
    static let externalIP = "203.0.113.7"       //   its externalIP
    static let loadBalancerIP = "203.0.113.8"   //   its status.loadBalancer.ingress IP

    static let nodeIPv4 = SandboxLayout.node1.lanIPv4
    static let nodeIPv6 = SandboxLayout.node1.lanIPv6
    static let masq4 = ServiceSandbox.masqueradedIPv4
    static let masq6 = ServiceSandbox.masqueradedIPv6

    /// Every service of the fixture with its EndpointSlices.
    static func objects(_ s: ServiceSandbox) -> String {
        typealias Port = KubeYAML.Port
        let pods123 = [s.pod(1), s.pod(2), s.pod(3)], pods234 = [s.pod(2), s.pod(3), s.pod(4)]
        return KubeYAML.stream([
            KubeYAML.service("echo-server", type: "NodePort", clusterIPs: [echoServerIP],
                             ports: [Port(name: "http", port: 80, targetPort: "http", nodePort: 32000)]),
            KubeYAML.endpointSlice("echo-server-abc12", service: "echo-server",
                                   ports: [("http", "TCP", 8080)], pods: pods123),
            KubeYAML.service("backend", type: "NodePort", clusterIPs: [backendIP],
                             ports: [Port(port: 80, targetPort: "8080", nodePort: 32020)]),
            KubeYAML.endpointSlice("backend-x1", service: "backend", ports: [("", "TCP", 8080)], pods: pods234),
            KubeYAML.service("hairpin", clusterIPs: [hairpinIP],
                             ports: [Port(name: "tcp", port: 80, targetPort: "8080"),
                                     Port(name: "udp", proto: "UDP", port: 80, targetPort: "8080")]),
            KubeYAML.endpointSlice("hairpin-x1", service: "hairpin",
                                   ports: [("tcp", "TCP", 8080), ("udp", "UDP", 8080)], pods: [s.pod(1)]),
            KubeYAML.service("empty", type: "NodePort", clusterIPs: [emptyIP],
                             ports: [Port(name: "web", port: 80, targetPort: "8080", nodePort: 32040),
                                     Port(name: "dns", proto: "UDP", port: 53, targetPort: "5353", nodePort: 32041)]),
            KubeYAML.endpointSlice("empty-x1", service: "empty",
                                   ports: [("web", "TCP", 8080), ("dns", "UDP", 5353)], pods: []),
            KubeYAML.service("dns", type: "NodePort", clusterIPs: [dnsIP],
                             ports: [Port(name: "dns", proto: "UDP", port: 53, targetPort: "dns", nodePort: 32053)]),
            KubeYAML.endpointSlice("dns-x1", service: "dns", ports: [("dns", "UDP", 5353)], pods: [s.pod(2), s.pod(3)]),
            KubeYAML.service("dual", type: "NodePort", clusterIPs: [dualIPv4, dualIPv6],
                             ports: [Port(name: "web", port: 80, targetPort: "8080", nodePort: 32060)]),
            KubeYAML.endpointSlice("dual-v4", service: "dual", ports: [("web", "TCP", 8080)], pods: pods234),
            KubeYAML.endpointSlice("dual-v6", service: "dual", ipv6: true, ports: [("web", "TCP", 8080)], pods: pods234),
            KubeYAML.service("public", type: "LoadBalancer", clusterIPs: [publicIP],
                             ports: [Port(name: "web", port: 80, targetPort: "8080", nodePort: 32070)],
                             externalIPs: [externalIP], loadBalancerIngress: [loadBalancerIP]),
            KubeYAML.endpointSlice("public-x1", service: "public", ports: [("web", "TCP", 8080)], pods: pods123),
        ])
    }

    /// `examples/echo-server.yaml` of this repository.
    static func exampleEchoServer() throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/echo-server.yaml")
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// pod name -> the same expected source for each.
    static func sources(_ pods: [Pod], all source: String) -> [String: String] {
        Dictionary(uniqueKeysWithValues: pods.map { ($0.name, source) })
    }

    // MARK: NodePort from outside

    /// external client -> 192.0.2.10:32000, the repository's example unchanged (a Deployment,
    /// a NodePort Service whose targetPort is the name `http`, and an EndpointSlice whose
    /// port `http` is 8080): every replica answers, and each sees node-1's cbr0 address.
    func testNodePortFromExternalClientReachesEveryReplicaMasqueraded() throws {
        try ServiceSandbox.run { s in
            let applied = try s.apply(try Self.exampleEchoServer())
            XCTAssertTrue(applied.stdout.hasPrefix("nftproxy: committed"), applied.stdout)
            let outcomes = try s.request(from: s.client, to: Self.nodeIPv4, port: 32000, count: 60)
            assertReplies(outcomes, from: Self.sources([s.pod(1), s.pod(2), s.pod(3)], all: Self.masq4),
                          "client -> NodePort 192.0.2.10:32000")
            // The service port itself is not opened on the node: only the NodePort is.
            XCTAssertEqual(try s.request(from: s.client, to: Self.nodeIPv4, port: 80), [.refused])
        }
    }

    /// 300 connections to the NodePort over 3 endpoints: each endpoint's count X is
    /// Binomial(300, 1/3): mean 100, sd ≈ 8.16. We require 55 ≤ X ≤ 145 (±45, 5.5 sd);
    /// exactly, P(X outside) = 3.1e-8 per endpoint, so the test fails by chance with
    /// probability below 3 × 3.1e-8 ≈ 9.4e-8 (union bound) when the balancing is uniform.
    func testNodePortBalanceIsWithinBinomialBound() throws {
        try ServiceSandbox.run { s in
            try s.apply(Self.objects(s))
            let n = 300
            let outcomes = try s.request(from: s.client, to: Self.nodeIPv4, port: 32000, count: n)
            assertReplies(outcomes, from: Self.sources([s.pod(1), s.pod(2), s.pod(3)], all: Self.masq4),
                          "client -> NodePort 32000 ×\(n)")
            let counts = tally(outcomes)
            print("NodePort balance over \(n) connections: \(counts.sorted { $0.key < $1.key })")
            for pod in ["pod-1", "pod-2", "pod-3"] {
                let count = counts[pod] ?? 0
                XCTAssertTrue((55...145).contains(count),
                              "\(pod) answered \(count) of \(n) connections; uniform balancing gives Binomial(300, 1/3), "
                              + "inside [55, 145] except with probability 3.1e-8 per endpoint (9.4e-8 for any of 3). "
                              + "Tally: \(counts.sorted { $0.key < $1.key })")
            }
        }
    }

    /// external client -> NodePort of a service with an endpoint on node-2: node-1 DNATs
    /// and masquerades to its address towards each endpoint (cbr0 for local pods, the LAN
    /// address for pod-4), so the replies come back through node-1.
    func testNodePortToEndpointOnOtherNode() throws {
        try ServiceSandbox.run { s in
            try s.apply(Self.objects(s))
            let outcomes = try s.request(from: s.client, to: Self.nodeIPv4, port: 32020, count: 60)
            assertReplies(outcomes, from: ["pod-2": Self.masq4, "pod-3": Self.masq4, "pod-4": Self.nodeIPv4],
                          "client -> NodePort 192.0.2.10:32020")
        }
    }

    // MARK: ClusterIP

    /// pod -> ClusterIP:80: DNAT to a ready endpoint, source kept, also for pod-4 on node-2
    /// (the packet crosses both nodes with the pod's own address).
    func testPodToClusterIPKeepsSourceAcrossNodes() throws {
        try ServiceSandbox.run { s in
            try s.apply(Self.objects(s))
            let pod1 = s.pod(1)
            let outcomes = try s.request(from: pod1.host, to: Self.backendIP, port: 80, count: 60)
            assertReplies(outcomes, from: Self.sources([s.pod(2), s.pod(3), s.pod(4)], all: pod1.ipv4),
                          "pod-1 -> ClusterIP \(Self.backendIP):80")
            // A pod that is itself one of the endpoints: the others see its address, it sees
            // node-1's (hairpin traffic is masqueraded).
            let fromPod2 = try s.request(from: s.pod(2).host, to: Self.dualIPv4, port: 80, count: 60)
            assertReplies(fromPod2, from: ["pod-2": Self.masq4, "pod-3": s.pod(2).ipv4, "pod-4": s.pod(2).ipv4],
                          "pod-2 -> ClusterIP \(Self.dualIPv4):80 (itself: hairpin, masqueraded)")
        }
    }

    /// node-1 itself -> ClusterIP: its packets leave with its LAN address (the route to the
    /// ClusterIP is its default route), which is outside the cluster CIDRs, so they are
    /// marked and masqueraded: local pods see cbr0's address, pod-4 sees node-1's LAN address.
    func testNodeToClusterIPIsMasqueraded() throws {
        try ServiceSandbox.run { s in
            try s.apply(Self.objects(s))
            assertReplies(try s.request(from: s.node1, to: Self.echoServerIP, port: 80, count: 60),
                          from: Self.sources([s.pod(1), s.pod(2), s.pod(3)], all: Self.masq4),
                          "node-1 -> ClusterIP \(Self.echoServerIP):80")
            assertReplies(try s.request(from: s.node1, to: Self.backendIP, port: 80, count: 60),
                          from: ["pod-2": Self.masq4, "pod-3": Self.masq4, "pod-4": Self.nodeIPv4],
                          "node-1 -> ClusterIP \(Self.backendIP):80")
            assertReplies(try s.request(from: s.node1, to: Self.dualIPv6, port: 80, count: 60),
                          from: ["pod-2": Self.masq6, "pod-3": Self.masq6, "pod-4": Self.nodeIPv6],
                          "node-1 -> ClusterIP [\(Self.dualIPv6)]:80")
        }
    }

    /// pod-1 -> ClusterIP whose only endpoint is pod-1: reaches pod-1, which sees node-1's
    /// cbr0 address, not its own (otherwise it would answer itself directly and the
    /// connection would break), for TCP and UDP.
    func testHairpinIsMasqueraded() throws {
        try ServiceSandbox.run { s in
            try s.apply(Self.objects(s))
            let pod1 = s.pod(1)
            for proto in [EchoProtocol.tcp, .udp] {
                XCTAssertEqual(try s.request(from: pod1.host, proto, to: Self.hairpinIP, port: 80, count: 3),
                               Array(repeating: .reply(name: "pod-1", peer: Self.masq4), count: 3),
                               "pod-1 -> \(proto) ClusterIP \(Self.hairpinIP):80 -> pod-1")
            }
            // Another pod reaching the same service keeps its source.
            XCTAssertEqual(try s.request(from: s.pod(2).host, to: Self.hairpinIP, port: 80),
                           [.reply(name: "pod-1", peer: s.pod(2).ipv4)])
        }
    }

    // MARK: externalIPs and load balancers

    /// external client -> externalIP, LB ingress IP and NodePort of a LoadBalancer service:
    /// every endpoint reached, masqueraded.
    func testExternalIPAndLoadBalancerIPAreMasqueraded() throws {
        try ServiceSandbox.run { s in
            try s.apply(Self.objects(s))
            let expected = Self.sources([s.pod(1), s.pod(2), s.pod(3)], all: Self.masq4)
            for (address, port, what) in [(Self.externalIP, UInt16(80), "externalIP"),
                                          (Self.loadBalancerIP, 80, "load-balancer ingress IP"),
                                          (Self.nodeIPv4, 32070, "NodePort of the LoadBalancer service")] {
                assertReplies(try s.request(from: s.client, to: address, port: port, count: 60), from: expected,
                              "client -> \(what) \(address):\(port)")
            }
        }
    }

    // MARK: Protocols and families

    /// UDP: 53 -> targetPort named `dns` (5353) from a pod (source kept) and through the UDP
    /// NodePort from the client (masqueraded).
    func testUDPService() throws {
        try ServiceSandbox.run { s in
            try s.apply(Self.objects(s))
            let pod1 = s.pod(1)
            assertReplies(try s.request(from: pod1.host, .udp, to: Self.dnsIP, port: 53, count: 60),
                          from: Self.sources([s.pod(2), s.pod(3)], all: pod1.ipv4), "pod-1 -> UDP \(Self.dnsIP):53")
            assertReplies(try s.request(from: s.client, .udp, to: Self.nodeIPv4, port: 32053, count: 60),
                          from: Self.sources([s.pod(2), s.pod(3)], all: Self.masq4), "client -> UDP NodePort 32053")
        }
    }

    /// SCTP: the same paths as TCP, where the kernel has SCTP sockets.
    func testSCTPService() throws {
        guard EchoProtocol.sctp.isSupportedByKernel else {
            throw XCTSkip("SCTP sockets are not supported by this kernel (socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) "
                          + "fails: no sctp module), so no SCTP traffic can be sent or served")
        }
        try ServiceSandbox.run { s in
            let pods = [s.pod(2), s.pod(3)]
            try s.topology.startEchoServers(echoBinary: s.echo.binary, ports: [9132], protocols: [.sctp], in: pods)
            typealias Port = KubeYAML.Port
            try s.apply(KubeYAML.stream([
                KubeYAML.service("sctp", type: "NodePort", clusterIPs: ["198.18.0.80"],
                                 ports: [Port(name: "sctp", proto: "SCTP", port: 9132, targetPort: "9132", nodePort: 32132)]),
                KubeYAML.endpointSlice("sctp-x1", service: "sctp", ports: [("sctp", "SCTP", 9132)], pods: pods),
            ]))
            let pod1 = s.pod(1)
            assertReplies(try s.request(from: pod1.host, .sctp, to: "198.18.0.80", port: 9132, count: 60),
                          from: Self.sources(pods, all: pod1.ipv4), "pod-1 -> SCTP ClusterIP 198.18.0.80:9132")
            assertReplies(try s.request(from: s.client, .sctp, to: Self.nodeIPv4, port: 32132, count: 60),
                          from: Self.sources(pods, all: Self.masq4), "client -> SCTP NodePort 32132")
        }
    }

    /// A dual-stack service with IPv6 endpoints: pod -> [2001:db8:18::10]:80 keeps the
    /// source (and the IPv4 ClusterIP works alongside), a pod reaching itself is
    /// masqueraded to cbr0's IPv6 address, and the IPv6 NodePort masquerades. A single-stack
    /// IPv4 service has no IPv6 NodePort.
    func testIPv6ClusterIPAndNodePort() throws {
        try ServiceSandbox.run { s in
            try s.apply(Self.objects(s))
            let pod1 = s.pod(1), pod2 = s.pod(2)
            assertReplies(try s.request(from: pod1.host, to: Self.dualIPv6, port: 80, count: 60),
                          from: Self.sources([s.pod(2), s.pod(3), s.pod(4)], all: pod1.ipv6),
                          "pod-1 -> [\(Self.dualIPv6)]:80")
            assertReplies(try s.request(from: pod2.host, to: Self.dualIPv6, port: 80, count: 60),
                          from: ["pod-2": Self.masq6, "pod-3": pod2.ipv6, "pod-4": pod2.ipv6],
                          "pod-2 -> [\(Self.dualIPv6)]:80 (itself: hairpin, masqueraded)")
            assertReplies(try s.request(from: s.client, to: Self.nodeIPv6, port: 32060, count: 60),
                          from: ["pod-2": Self.masq6, "pod-3": Self.masq6, "pod-4": Self.nodeIPv6],
                          "client -> NodePort [\(Self.nodeIPv6)]:32060")
            XCTAssertEqual(try s.request(from: s.client, to: Self.nodeIPv6, port: 32000), [.refused],
                           "echo-server is IPv4-only: node-1 has no IPv6 NodePort 32000 (its own stack resets)")
        }
    }

    // MARK: Rejections

    /// Three attempts in a row from `host`, each allowed to wait 2 s: all refused (a reset
    /// or ICMP error arrived before the timeout: a drop would read `timeout`), and all three
    /// together, process start-up included, in under 1.5 s: under one attempt's timeout.
    private func assertRefusedAtOnce(_ s: ServiceSandbox, from host: Sandbox.Host, _ proto: EchoProtocol, _ address: String,
                                     _ port: UInt16, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let clock = ContinuousClock()
        let start = clock.now
        let outcomes = try s.request(from: host, proto, to: address, port: port, count: 3, timeoutMilliseconds: 2000)
        let elapsed = clock.now - start
        print("\(what) (\(proto)): \(outcomes.map(\.description).joined(separator: ", ")) in \(elapsed)")
        XCTAssertEqual(outcomes, [.refused, .refused, .refused], "\(what) (\(proto))", file: file, line: line)
        XCTAssertLessThan(elapsed, .milliseconds(1500), "\(what) (\(proto)): three refusals took \(elapsed); "
                          + "each must come at once, not after the 2 s timeout", file: file, line: line)
    }

    /// A service without endpoints (ClusterIP and NodePort) and a port a ClusterIP does
    /// not define are rejected at once: TCP with a reset, UDP with ICMP port unreachable.
    func testNoEndpointsAndUndefinedPortsAreRejectedAtOnce() throws {
        try ServiceSandbox.run { s in
            try s.apply(Self.objects(s))
            let pod1 = s.pod(1).host
            try assertRefusedAtOnce(s, from: pod1, .tcp, Self.emptyIP, 80, "pod -> ClusterIP without endpoints")
            try assertRefusedAtOnce(s, from: pod1, .udp, Self.emptyIP, 53, "pod -> ClusterIP without endpoints")
            try assertRefusedAtOnce(s, from: s.node1, .tcp, Self.emptyIP, 80, "node-1 -> ClusterIP without endpoints")
            try assertRefusedAtOnce(s, from: s.client, .tcp, Self.nodeIPv4, 32040, "client -> NodePort without endpoints")
            try assertRefusedAtOnce(s, from: s.client, .udp, Self.nodeIPv4, 32041, "client -> NodePort without endpoints")
            try assertRefusedAtOnce(s, from: pod1, .tcp, Self.echoServerIP, 81, "pod -> ClusterIP, undefined port")
            try assertRefusedAtOnce(s, from: pod1, .udp, Self.echoServerIP, 80, "pod -> ClusterIP, port defined for TCP only")
            try assertRefusedAtOnce(s, from: pod1, .tcp, Self.dualIPv6, 81, "pod -> IPv6 ClusterIP, undefined port")
            try assertRefusedAtOnce(s, from: pod1, .udp, Self.dualIPv6, 53, "pod -> IPv6 ClusterIP, undefined port")
        }
    }

    /// Endpoint conditions: a terminating endpoint is not used while a ready one exists;
    /// when none is ready, the serving-and-terminating ones are (as kube-proxy does); one
    /// that neither is ready nor serves makes the service endpoint-less: rejected at once.
    func testServingTerminatingEndpointsAreUsedOnlyWithoutReadyOnes() throws {
        try ServiceSandbox.run { s in
            typealias Port = KubeYAML.Port
            let pod2 = s.pod(2), pod3 = s.pod(3), pod1 = s.pod(1)
            let web = [Port(name: "web", port: 80, targetPort: "8080")]
            let ports: [(name: String, proto: String, port: UInt16)] = [("web", "TCP", 8080)]
            try s.apply(KubeYAML.stream([
                KubeYAML.service("rolling", clusterIPs: ["198.18.0.90"], ports: web),
                KubeYAML.endpointSlice("rolling-x1", service: "rolling", ports: ports, pods: [pod2, pod3],
                                       conditions: ["pod-3": .servingTerminating]),
                KubeYAML.service("draining", clusterIPs: ["198.18.0.91"], ports: web),
                KubeYAML.endpointSlice("draining-x1", service: "draining", ports: ports, pods: [pod2, pod3],
                                       conditions: ["pod-2": .servingTerminating, "pod-3": .servingTerminating]),
                KubeYAML.service("gone", clusterIPs: ["198.18.0.92"], ports: web),
                KubeYAML.endpointSlice("gone-x1", service: "gone", ports: ports, pods: [pod2],
                                       conditions: ["pod-2": .terminating]),
            ]))
            XCTAssertEqual(try s.request(from: pod1.host, to: "198.18.0.90", port: 80, count: 20),
                           Array(repeating: .reply(name: "pod-2", peer: pod1.ipv4), count: 20),
                           "a ready endpoint and a serving-terminating one: only the ready one")
            assertReplies(try s.request(from: pod1.host, to: "198.18.0.91", port: 80, count: 60),
                          from: Self.sources([pod2, pod3], all: pod1.ipv4), "only serving-terminating endpoints")
            try assertRefusedAtOnce(s, from: pod1.host, .tcp, "198.18.0.92", 80, "only a terminating, not serving endpoint")
        }
    }

    // MARK: apply options and cleanup

    /// `--nodeport-addresses`: a range node-1 has no address in turns its NodePorts off
    /// (the connection then reaches node-1's own stack, where nothing listens on 32000, so
    /// it is refused with a reset); a range holding 192.0.2.10 turns them back on.
    /// ClusterIPs are not affected.
    func testNodePortAddresses() throws {
        try ServiceSandbox.run { s in
            let objects = Self.objects(s)
            let replicas = Self.sources([s.pod(1), s.pod(2), s.pod(3)], all: Self.masq4)
            try s.apply(objects, options: ServiceSandbox.nodeOptions + ["--nodeport-addresses", "198.51.100.0/24"])
            XCTAssertEqual(try s.request(from: s.client, to: Self.nodeIPv4, port: 32000, count: 3),
                           [.refused, .refused, .refused], "NodePort with --nodeport-addresses 198.51.100.0/24")
            assertReplies(try s.request(from: s.client, to: Self.externalIP, port: 80, count: 3), from: replicas,
                          reachingAll: false, "externalIP with --nodeport-addresses 198.51.100.0/24")
            assertReplies(try s.request(from: s.pod(1).host, to: Self.backendIP, port: 80, count: 60),
                          from: Self.sources([s.pod(2), s.pod(3), s.pod(4)], all: s.pod(1).ipv4),
                          "ClusterIP with --nodeport-addresses 198.51.100.0/24")

            try s.apply(objects, options: ServiceSandbox.nodeOptions + ["--nodeport-addresses", "192.0.2.10/32"])
            assertReplies(try s.request(from: s.client, to: Self.nodeIPv4, port: 32000, count: 60), from: replicas,
                          "NodePort with --nodeport-addresses 192.0.2.10/32")

            try s.apply(objects)  // default: every local address again
            assertReplies(try s.request(from: s.client, to: Self.nodeIPv4, port: 32000, count: 60), from: replicas,
                          "NodePort without --nodeport-addresses")
        }
    }

    /// `nftproxy cleanup --netns <node-1>` removes nftproxy's tables and with them every
    /// service: the NodePort is refused by node-1's own stack, and a ClusterIP is just an
    /// unrouted address again (node-1 forwards it to its default route, where nothing
    /// answers: the attempt times out). A repeated apply commits nothing; a repeated
    /// cleanup is fine; an apply after cleanup restores everything.
    func testCleanupStopsEverything() throws {
        try ServiceSandbox.run { s in
            let objects = Self.objects(s)
            let pod1 = s.pod(1)
            try s.apply(objects)
            XCTAssertEqual(try s.nodeTables(), ["table ip nftproxy", "table ip6 nftproxy"])
            let again = try s.apply(objects)
            XCTAssertTrue(again.stdout.contains("nothing committed"), "a repeated apply: \(again.stdout)")
            assertReplies(try s.request(from: pod1.host, to: Self.backendIP, port: 80, count: 60),
                          from: Self.sources([s.pod(2), s.pod(3), s.pod(4)], all: pod1.ipv4), "before cleanup")

            try s.cleanup()
            XCTAssertEqual(try s.nodeTables(), [], "nftproxy's tables after cleanup")
            XCTAssertEqual(try s.request(from: s.client, to: Self.nodeIPv4, port: 32000, count: 3),
                           [.refused, .refused, .refused], "NodePort after cleanup")
            XCTAssertEqual(try s.request(from: pod1.host, to: Self.backendIP, port: 80), [.timeout],
                           "ClusterIP after cleanup")
            XCTAssertEqual(try s.request(from: pod1.host, .udp, to: Self.emptyIP, port: 53), [.timeout],
                           "a rejected ClusterIP after cleanup")
            try s.cleanup()

            try s.apply(objects)
            assertReplies(try s.request(from: pod1.host, to: Self.backendIP, port: 80, count: 60),
                          from: Self.sources([s.pod(2), s.pod(3), s.pod(4)], all: pod1.ipv4), "after cleanup and apply")
        }
    }
}
