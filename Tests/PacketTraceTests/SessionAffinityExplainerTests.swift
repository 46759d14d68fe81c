import Nftables
import PacketTrace
import ProxyCompiler
import ServiceModel
import XCTest

/// sessionAffinity ClientIP followed through compiled rulesets: a client without an entry
/// is balanced and its entry written after DNAT; a remembered client goes to its endpoint
/// only; a remembered endpoint that is gone releases the client (entry deleted, packet dropped).
final class SessionAffinityExplainerTests: XCTestCase {
    private static func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    private static let sticky = Service(
        name: ServiceName(namespace: "shop", name: "sticky"),
        clusterIPs: [ip("198.18.0.60")], loadBalancerIPs: [ip("203.0.113.60")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 30060,
                            endpoints: ["198.19.1.81", "198.19.1.82", "198.19.2.81"].map {
                                Endpoint(address: ip($0), port: 8080, nodeName: "node-1")
                            })],
        sessionAffinityTimeout: 600)
    private static let map = ServiceMap(services: [sticky])
    private static let node = NodeConfig(nodeName: "node-1", nodeIPs: [ip("192.0.2.10")],
                                         clusterCIDRs: [CIDR("198.19.0.0/16")!])

    /// The compiled ruleset, with `remembered` (client . frontend address . port -> endpoint)
    /// in the `affinity` map, as the packet path would have left it.
    private func explainer(remembering remembered: [(client: String, frontend: String, endpoint: String)] = []) -> PacketExplainer {
        var ruleset = Compiler(node: Self.node).compile(Self.map).ruleset
        let table = ruleset.tables.firstIndex { $0.family == .ip }!
        let set = ruleset.tables[table].sets.firstIndex { $0.name == RulesetLayout.SetName.affinity }!
        ruleset.tables[table].sets[set].elements = remembered.map { entry in
            SetElement(key: [.address(Self.ip(entry.client)), .address(Self.ip(entry.frontend)), .proto(6), .port(80)],
                       data: .values([.address(Self.ip(entry.endpoint)), .port(8080)]))
        }
        return PacketExplainer(ruleset: ruleset, node: NodeFacts(localAddresses: Set(Self.node.nodeIPs)), services: Self.map)
    }

    private func packet(_ from: String, _ to: String) -> Packet {
        Packet(source: Self.ip(from), destination: Self.ip(to), destinationPort: 80, transport: .tcp)
    }

    func testANewClientIsBalancedAndRememberedAfterDNAT() {
        let explanation = explainer().explain(packet("198.19.1.99", "198.18.0.60"), from: .pod)
        guard case .balanced(let shares) = explanation.verdict else { return XCTFail("\(explanation.verdict)") }
        XCTAssertEqual(shares.map { "\($0.address)" }, ["198.19.1.81", "198.19.1.82", "198.19.2.81"])
        for path in explanation.paths {
            XCTAssertTrue(path.steps.contains { $0.chain == "affinity-service" }, "\(path.steps.map(\.chain))")
            let updates = path.steps.flatMap(\.events).compactMap { event -> [Value]? in
                if case .updatedSet(RulesetLayout.SetName.affinity, let key) = event { return key } else { return nil }
            }
            XCTAssertEqual(updates, [[.address(Self.ip("198.19.1.99")), .address(Self.ip("198.18.0.60")), .proto(6), .port(80)]],
                           "the entry is written in the filter hook: \(path.steps.map(\.rule))")
        }
    }

    func testARememberedClientGoesToItsEndpointOnly() {
        let explainer = explainer(remembering: [("198.19.1.99", "198.18.0.60", "198.19.1.82"),
                                                ("203.0.113.9", "203.0.113.60", "198.19.2.81")])
        let pod = explainer.explain(packet("198.19.1.99", "198.18.0.60"), from: .pod)
        guard case .balanced(let shares) = pod.verdict else { return XCTFail("\(pod.verdict)") }
        XCTAssertEqual(shares.map { "\($0.address)" }, ["198.19.1.82"])
        XCTAssertEqual(shares.first?.probability, 1)
        // Through the LB IP the remembered client is masqueraded like a balanced one.
        let outside = explainer.explain(packet("203.0.113.9", "203.0.113.60"), from: .outside)
        guard case .balanced(let external) = outside.verdict else { return XCTFail("\(outside.verdict)") }
        XCTAssertEqual(external.map { "\($0.address)" }, ["198.19.2.81"])
        XCTAssertEqual(external.first?.masquerade, .externalAddress)
        // Another client is balanced over all three.
        let other = explainer.explain(packet("198.19.1.98", "198.18.0.60"), from: .pod)
        guard case .balanced(let spread) = other.verdict else { return XCTFail("\(other.verdict)") }
        XCTAssertEqual(spread.count, 3)
    }

    func testARememberedEndpointThatIsGoneReleasesTheClient() {
        let explanation = explainer(remembering: [("198.19.1.99", "198.18.0.60", "198.19.1.83")])
            .explain(packet("198.19.1.99", "198.18.0.60"), from: .pod)
        XCTAssertEqual(explanation.verdict, .dropped(chain: RulesetLayout.ChainName.affinityRecord), "\(explanation.paths)")
        XCTAssertTrue(explanation.paths.first?.steps.flatMap(\.events).contains {
            if case .deletedFromSet(RulesetLayout.SetName.affinity, _) = $0 { return true } else { return false }
        } ?? false)
    }
}
