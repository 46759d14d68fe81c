import Nftables
import PacketTrace
import ProxyCompiler
import ServiceModel
import XCTest

/// `PacketExplainer` over compiled rulesets: each case is one row of docs/ruleset.md's
/// "Packet paths", checked against the verdict, the endpoints with their probabilities,
/// and the masquerade or refusal reason.
final class PacketExplainerTests: XCTestCase {
    private static func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    private static let echo = Service(
        name: ServiceName(namespace: "default", name: "echo-server"),
        clusterIPs: [ip("198.18.0.10"), ip("2001:db8:5::10")],
        externalIPs: [ip("203.0.113.7")],
        loadBalancerIPs: [ip("203.0.113.8")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 32000, endpoints: [
            Endpoint(address: ip("198.19.1.11"), port: 8080, nodeName: "node-1"),
            Endpoint(address: ip("198.19.1.12"), port: 8080, nodeName: "node-1"),
            Endpoint(address: ip("198.19.2.13"), port: 8080, nodeName: "node-2"),
            Endpoint(address: ip("2001:db8:1:1::11"), port: 8080, nodeName: "node-1"),
        ])])
    private static let empty = Service(
        name: ServiceName(namespace: "default", name: "empty"),
        clusterIPs: [ip("198.18.0.99")],
        ports: [ServicePort(name: "web", transport: .tcp, port: 80, nodePort: 30080)])
    private static let dns = Service(
        name: ServiceName(namespace: "kube-system", name: "dns"),
        clusterIPs: [ip("198.18.0.53")],
        ports: [ServicePort(name: "dns", transport: .udp, port: 53, endpoints: [
            Endpoint(address: ip("198.19.1.21"), port: 5353, nodeName: "node-1"),
        ])])

    private static let map = ServiceMap(services: [echo, empty, dns])
    private static let node = NodeConfig(nodeName: "node-1", nodeIPs: [ip("192.0.2.10"), ip("2001:db8:2::10")],
                                         clusterCIDRs: [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])

    private func explainer(node: NodeConfig = node) -> PacketExplainer {
        PacketExplainer(ruleset: Compiler(node: node).compile(Self.map).ruleset,
                        node: NodeFacts(localAddresses: Set(node.nodeIPs)), services: Self.map)
    }

    private func explain(_ from: String, _ to: String, _ port: UInt16, _ transport: TransportProtocol = .tcp,
                         origin: PacketOrigin, node: NodeConfig = node) -> Explanation {
        explainer(node: node).explain(Packet(source: Self.ip(from), destination: Self.ip(to), destinationPort: port,
                                             transport: transport), from: origin)
    }

    private func shares(_ explanation: Explanation, file: StaticString = #filePath, line: UInt = #line) -> [EndpointShare] {
        guard case .balanced(let shares) = explanation.verdict else {
            XCTFail("not balanced: \(explanation.verdict)\n\(explanation.text)", file: file, line: line)
            return []
        }
        return shares
    }

    func testExternalClientToNodePortIsBalancedAndMasqueraded() {
        let explanation = explain("203.0.113.50", "192.0.2.10", 32000, origin: .outside)
        XCTAssertEqual(explanation.frontend?.kind, .nodePort)
        XCTAssertEqual(explanation.frontend?.service, Self.echo.name)
        XCTAssertEqual(explanation.frontend?.portName, "http")
        let shares = shares(explanation)
        XCTAssertEqual(shares.map(\.address), ["198.19.1.11", "198.19.1.12", "198.19.2.13"].map(Self.ip))
        XCTAssertEqual(shares.map(\.port), [8080, 8080, 8080])
        for share in shares { XCTAssertEqual(share.probability, 1.0 / 3, accuracy: 1e-12) }
        XCTAssertEqual(shares.map(\.masquerade), [.nodePort, .nodePort, .nodePort])
        XCTAssertEqual(shares.map(\.nodeName), ["node-1", "node-1", "node-2"])
        XCTAssertEqual(explanation.paths.count, 3)
        XCTAssertTrue(explanation.text.contains("matches Service default/echo-server, port http (NodePort"), explanation.text)
    }

    func testNodePortOnAnotherAddressOrLoopbackIsUntouched() {
        // Not a local address of the node: not a NodePort.
        XCTAssertEqual(explain("203.0.113.50", "192.0.2.99", 32000, origin: .outside).verdict, .untouched(masquerade: nil))
        // Loopback is excluded from NodePorts by default, as kube-proxy does.
        XCTAssertEqual(explain("127.0.0.1", "127.0.0.1", 32000, origin: .node).verdict, .untouched(masquerade: nil))
    }

    func testPodToClusterIPKeepsItsSourceExceptWhenItReachesItself() {
        let other = shares(explain("198.19.1.99", "198.18.0.10", 80, origin: .pod))
        XCTAssertEqual(other.count, 3)
        XCTAssertTrue(other.allSatisfy { $0.masquerade == nil }, "\(other)")

        let itself = shares(explain("198.19.1.11", "198.18.0.10", 80, origin: .pod))
        XCTAssertEqual(itself.first { $0.address == Self.ip("198.19.1.11") }?.masquerade, .hairpin)
        XCTAssertEqual(itself.filter { $0.masquerade == nil }.count, 2)
    }

    func testNodeToClusterIPIsMasqueradedAsOffCluster() {
        let shares = shares(explain("192.0.2.10", "198.18.0.10", 80, origin: .node))
        XCTAssertEqual(shares.count, 3)
        XCTAssertTrue(shares.allSatisfy { $0.masquerade == .sourceOutsideClusterCIDRs }, "\(shares)")
    }

    func testMasqueradeAllMarksPodTraffic() {
        var node = Self.node
        node.masqueradeAll = true
        let shares = shares(explain("198.19.1.99", "198.18.0.10", 80, origin: .pod, node: node))
        XCTAssertTrue(shares.allSatisfy { $0.masquerade == .masqueradeAll }, "\(shares)")
    }

    func testExternalAndLoadBalancerAddresses() {
        let external = explain("203.0.113.50", "203.0.113.7", 80, origin: .outside)
        XCTAssertEqual(external.frontend?.kind, .externalIP)
        XCTAssertTrue(shares(external).allSatisfy { $0.masquerade == .externalAddress })
        let balancer = explain("203.0.113.50", "203.0.113.8", 80, origin: .outside)
        XCTAssertEqual(balancer.frontend?.kind, .loadBalancerIP)
        XCTAssertEqual(shares(balancer).count, 3)
    }

    func testRefusals() {
        let noEndpoints = explain("198.19.1.99", "198.18.0.99", 80, origin: .pod)
        XCTAssertEqual(noEndpoints.verdict, .rejected(.tcpReset, .noEndpoints))
        XCTAssertEqual(noEndpoints.frontend?.service, Self.empty.name)
        XCTAssertEqual(explain("203.0.113.50", "192.0.2.10", 30080, origin: .outside).verdict,
                       .rejected(.tcpReset, .noEndpoints))
        XCTAssertEqual(explain("198.19.1.99", "198.18.0.10", 81, origin: .pod).verdict,
                       .rejected(.tcpReset, .undefinedPort))
        // UDP to a TCP-only port: ICMP port unreachable.
        XCTAssertEqual(explain("198.19.1.99", "198.18.0.10", 80, .udp, origin: .pod).verdict,
                       .rejected(.portUnreachable, .undefinedPort))
    }

    func testUDPAndIPv6() {
        let dns = shares(explain("198.19.1.99", "198.18.0.53", 53, .udp, origin: .pod))
        XCTAssertEqual(dns.map(\.address), [Self.ip("198.19.1.21")])
        XCTAssertEqual(dns.first?.probability, 1)
        let six = shares(explain("2001:db8:1:2::5", "2001:db8:5::10", 80, origin: .pod))
        XCTAssertEqual(six.map(\.address), [Self.ip("2001:db8:1:1::11")])
        XCTAssertEqual(shares(explain("2001:db8:9::1", "2001:db8:2::10", 32000, origin: .outside)).first?.masquerade, .nodePort)
    }

    func testWithoutObjectsTheFrontendIsStillNamedByAddress() {
        let explainer = PacketExplainer(ruleset: Compiler(node: Self.node).compile(Self.map).ruleset,
                                        node: NodeFacts(localAddresses: [Self.ip("192.0.2.10")]))
        let explanation = explainer.explain(Packet(source: Self.ip("198.19.1.99"), destination: Self.ip("198.18.0.10"),
                                                   destinationPort: 80, transport: .tcp), from: .pod)
        XCTAssertEqual(explanation.frontend?.kind, .clusterIP)
        XCTAssertNil(explanation.frontend?.service)
        XCTAssertEqual(shares(explanation).count, 3)
    }

    /// Walking is exact: the probabilities of a bucket of N endpoints add up to 1 for every N,
    /// and each numgen slot is one path.
    func testProbabilitiesOfEveryBucketAddUp() {
        for count in [1, 2, 5, 7] {
            let service = Service(name: ServiceName(namespace: "n", name: "s\(count)"), clusterIPs: [Self.ip("198.18.1.1")],
                                  ports: [ServicePort(name: "", transport: .tcp, port: 80, endpoints: (0..<count).map {
                                      Endpoint(address: Self.ip("198.19.3.\($0 + 1)"), port: 80)
                                  })])
            let map = ServiceMap(services: [service])
            let explainer = PacketExplainer(ruleset: Compiler(node: Self.node).compile(map).ruleset,
                                            node: NodeFacts(localAddresses: []), services: map)
            let explanation = explainer.explain(Packet(source: Self.ip("198.19.1.99"), destination: Self.ip("198.18.1.1"),
                                                       destinationPort: 80, transport: .tcp), from: .pod)
            XCTAssertEqual(explanation.paths.count, count)
            XCTAssertEqual(shares(explanation).reduce(0) { $0 + $1.probability }, 1, accuracy: 1e-12)
        }
    }

    func testJSONNamesTheVerdictAndEndpoints() throws {
        let json = explain("203.0.113.50", "192.0.2.10", 32000, origin: .outside).json
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        XCTAssertEqual(object["verdict"] as? String, "balanced")
        let endpoints = try XCTUnwrap(object["endpoints"] as? [[String: Any]])
        XCTAssertEqual(endpoints.compactMap { $0["masquerade"] as? String }, ["nodeport", "nodeport", "nodeport"])
        XCTAssertEqual((object["frontend"] as? [String: Any])?["service"] as? String, "default/echo-server")
    }
}
