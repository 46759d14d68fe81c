import Nftables
import PacketTrace
import ProxyCompiler
import ServiceModel
import XCTest

/// The verdicts of the traffic policies Local, followed through compiled rulesets: external
/// traffic to local endpoints only with its source kept (or dropped), pods and the node
/// short-circuited to every endpoint, ClusterIPs of internalTrafficPolicy Local, and the
/// terminating fallback decided per list.
final class TrafficPolicyExplainerTests: XCTestCase {
    private static func ip(_ text: String) -> IPAddress { IPAddress(text)! }
    private static func endpoint(_ address: String, _ node: String, port: UInt16 = 8080) -> Endpoint {
        Endpoint(address: ip(address), port: port, nodeName: node)
    }

    private static let localLB = Service(
        name: ServiceName(namespace: "shop", name: "local-lb"),
        clusterIPs: [ip("198.18.0.30")], loadBalancerIPs: [ip("203.0.113.30")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 30030,
                            endpoints: [endpoint("198.19.1.51", "node-1"), endpoint("198.19.2.51", "node-2")])],
        externalTrafficPolicy: .local)
    private static let remoteOnly = Service(
        name: ServiceName(namespace: "shop", name: "remote-only"),
        clusterIPs: [ip("198.18.0.31")], externalIPs: [ip("203.0.113.31")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 30031,
                            endpoints: [endpoint("198.19.2.61", "node-2")])],
        externalTrafficPolicy: .local)
    private static let rolling = Service(
        name: ServiceName(namespace: "shop", name: "rolling"),
        clusterIPs: [ip("198.18.0.32")], loadBalancerIPs: [ip("203.0.113.32")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, endpoints: [
            Endpoint(address: ip("198.19.1.71"), port: 8080, ready: false, serving: true, terminating: true, nodeName: "node-1"),
            endpoint("198.19.2.71", "node-2"),
        ])],
        externalTrafficPolicy: .local)
    private static let internalLocal = Service(
        name: ServiceName(namespace: "kube-system", name: "node-cache"),
        clusterIPs: [ip("198.18.0.33")],
        ports: [ServicePort(name: "dns", transport: .udp, port: 53,
                            endpoints: [endpoint("198.19.1.81", "node-1", port: 5353), endpoint("198.19.2.81", "node-2", port: 5353)])],
        internalTrafficPolicy: .local)
    private static let internalElsewhere = Service(
        name: ServiceName(namespace: "kube-system", name: "elsewhere"),
        clusterIPs: [ip("198.18.0.34")],
        ports: [ServicePort(name: "", transport: .tcp, port: 80, endpoints: [endpoint("198.19.2.91", "node-2", port: 80)])],
        internalTrafficPolicy: .local)

    private static let ranged = Service(
        name: ServiceName(namespace: "shop", name: "ranged"),
        clusterIPs: [ip("198.18.0.35")], loadBalancerIPs: [ip("203.0.113.35")],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 30035,
                            endpoints: [endpoint("198.19.1.95", "node-1")])],
        loadBalancerSourceRanges: [CIDR("198.51.100.0/24")!, CIDR("192.0.2.0/24")!])

    private static let map = ServiceMap(services: [localLB, remoteOnly, rolling, internalLocal, internalElsewhere, ranged])
    private static let node = NodeConfig(nodeName: "node-1", nodeIPs: [ip("192.0.2.10")],
                                         clusterCIDRs: [CIDR("198.19.0.0/16")!])
    private let explainer = PacketExplainer(ruleset: Compiler(node: node).compile(map).ruleset,
                                            node: NodeFacts(localAddresses: Set(node.nodeIPs)), services: map)

    private func explain(_ from: String, _ to: String, _ port: UInt16, _ transport: TransportProtocol = .tcp,
                         origin: PacketOrigin) -> Explanation {
        explainer.explain(Packet(source: Self.ip(from), destination: Self.ip(to), destinationPort: port, transport: transport),
                          from: origin)
    }

    /// (endpoint address, masquerade reason) of a balanced verdict; fails otherwise.
    private func targets(_ explanation: Explanation, file: StaticString = #filePath, line: UInt = #line)
        -> [(String, MasqueradeReason?)] {
        guard case .balanced(let shares) = explanation.verdict else {
            XCTFail("not balanced: \(explanation.verdict)\n\(explanation.text)", file: file, line: line)
            return []
        }
        return shares.map { ("\($0.address)", $0.masquerade) }
    }

    private func assertTargets(_ explanation: Explanation, _ addresses: [String], masquerade: MasqueradeReason?,
                               file: StaticString = #filePath, line: UInt = #line) {
        let found = targets(explanation, file: file, line: line)
        XCTAssertEqual(found.map(\.0), addresses, explanation.text, file: file, line: line)
        XCTAssertTrue(found.allSatisfy { $0.1 == masquerade }, "\(found)\n\(explanation.text)", file: file, line: line)
    }

    private func assertDropped(_ explanation: Explanation, file: StaticString = #filePath, line: UInt = #line) {
        guard case .dropped = explanation.verdict else {
            return XCTFail("not dropped: \(explanation.verdict)\n\(explanation.text)", file: file, line: line)
        }
    }

    func testExternalTrafficReachesOnlyLocalEndpointsWithItsSource() {
        assertTargets(explain("203.0.113.50", "203.0.113.30", 80, origin: .outside), ["198.19.1.51"], masquerade: nil)
        assertTargets(explain("203.0.113.50", "192.0.2.10", 30030, origin: .outside), ["198.19.1.51"], masquerade: nil)
        XCTAssertEqual(explain("203.0.113.50", "203.0.113.30", 80, origin: .outside).frontend?.kind, .loadBalancerIP)
    }

    func testPodsAndTheNodeShortCircuitToEveryEndpoint() {
        assertTargets(explain("198.19.1.99", "203.0.113.30", 80, origin: .pod), ["198.19.1.51", "198.19.2.51"], masquerade: nil)
        assertTargets(explain("198.19.1.99", "192.0.2.10", 30030, origin: .pod), ["198.19.1.51", "198.19.2.51"], masquerade: nil)
        assertTargets(explain("192.0.2.10", "203.0.113.30", 80, origin: .node), ["198.19.1.51", "198.19.2.51"],
                      masquerade: .nodeShortCircuit)
        assertTargets(explain("192.0.2.10", "192.0.2.10", 30030, origin: .node), ["198.19.1.51", "198.19.2.51"],
                      masquerade: .nodeShortCircuit)
        // The ClusterIP follows the internal policy (Cluster here): every endpoint.
        assertTargets(explain("198.19.1.99", "198.18.0.30", 80, origin: .pod), ["198.19.1.51", "198.19.2.51"], masquerade: nil)
    }

    func testWithoutLocalEndpointsExternalTrafficIsDroppedButPodsStillReachTheService() {
        assertDropped(explain("203.0.113.50", "203.0.113.31", 80, origin: .outside))
        assertDropped(explain("203.0.113.50", "192.0.2.10", 30031, origin: .outside))
        assertTargets(explain("198.19.1.99", "203.0.113.31", 80, origin: .pod), ["198.19.2.61"], masquerade: nil)
        assertTargets(explain("192.0.2.10", "192.0.2.10", 30031, origin: .node), ["198.19.2.61"], masquerade: .nodeShortCircuit)
    }

    func testInternalTrafficPolicyLocal() {
        assertTargets(explain("198.19.1.99", "198.18.0.33", 53, .udp, origin: .pod), ["198.19.1.81"], masquerade: nil)
        assertTargets(explain("192.0.2.10", "198.18.0.33", 53, .udp, origin: .node), ["198.19.1.81"],
                      masquerade: .sourceOutsideClusterCIDRs)
        assertDropped(explain("198.19.1.99", "198.18.0.34", 80, origin: .pod))
        assertDropped(explain("192.0.2.10", "198.18.0.34", 80, origin: .node))
    }

    func testTerminatingFallbackIsDecidedPerList() {
        // No local endpoint is ready: external traffic goes to the local terminating one...
        assertTargets(explain("203.0.113.50", "203.0.113.32", 80, origin: .outside), ["198.19.1.71"], masquerade: nil)
        // ...while the cluster-wide list has a ready endpoint and ignores the terminating one.
        assertTargets(explain("198.19.1.99", "203.0.113.32", 80, origin: .pod), ["198.19.2.71"], masquerade: nil)
        assertTargets(explain("198.19.1.99", "198.18.0.32", 80, origin: .pod), ["198.19.2.71"], masquerade: nil)
    }

    func testLoadBalancerSourceRanges() {
        assertTargets(explain("198.51.100.7", "203.0.113.35", 80, origin: .outside), ["198.19.1.95"], masquerade: .externalAddress)
        assertDropped(explain("203.0.113.50", "203.0.113.35", 80, origin: .outside))
        // A range holds the node's address: the node's traffic from the LB IP itself passes too.
        assertTargets(explain("203.0.113.35", "203.0.113.35", 80, origin: .node), ["198.19.1.95"], masquerade: .externalAddress)
        // Pods outside the ranges are dropped too (as upstream); NodePorts are not filtered.
        assertDropped(explain("198.19.1.99", "203.0.113.35", 80, origin: .pod))
        assertTargets(explain("203.0.113.50", "192.0.2.10", 30035, origin: .outside), ["198.19.1.95"], masquerade: .nodePort)
        XCTAssertEqual(explain("198.51.100.7", "203.0.113.35", 80, origin: .outside).frontend?.kind, .loadBalancerIP)
        // Without the objects, the chains still say these are external addresses.
        let anonymous = PacketExplainer(ruleset: Compiler(node: Self.node).compile(Self.map).ruleset,
                                        node: NodeFacts(localAddresses: Set(Self.node.nodeIPs)))
        for address in ["203.0.113.35", "203.0.113.30"] {
            let packet = Packet(source: Self.ip("198.51.100.7"), destination: Self.ip(address), destinationPort: 80, transport: .tcp)
            XCTAssertEqual(anonymous.explain(packet, from: .outside).frontend?.kind, .externalIP, address)
        }
    }
}
