import Foundation
import XCTest
import Nftables
import ServiceModel
@testable import ProxyCompiler

/// Golden tests: compiled and rendered rulesets for representative services.
///
/// Set UPDATE_GOLDEN=1 to rewrite the files after an intended change, then review the diff.
final class GoldenTests: XCTestCase {
    private static let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Golden")

    /// Endpoint counters are off unless `counters` asks for them (`testEndpointCounters`),
    /// so that the other files show only what they are about.
    private func check(_ name: String, _ map: ServiceMap, node: NodeConfig = Fixtures.node, counters: Bool = false,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        var node = node
        node.endpointCounters = counters
        let compilation = Compiler(node: node).compile(map)
        let text = ScriptRenderer().render(compilation.ruleset)
        let url = Self.goldenDirectory.appendingPathComponent("\(name).nft")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: url, encoding: .utf8)
        // KernelTests.GoldenNftCheckTests has nft check every golden file (that needs root).
        XCTAssertEqual(text, expected, "\(name).nft differs; UPDATE_GOLDEN=1 rewrites it", file: file, line: line)
    }

    func testEchoServerNodePort() throws {
        try check("echo-server", ServiceMap(services: [Fixtures.echoServer]))
    }

    func testRepresentativeServices() throws {
        try check("representative", ServiceMap(services: [Fixtures.echoServer, Fixtures.dns, Fixtures.web,
                                                          Fixtures.empty, Fixtures.draining]))
    }

    func testMasqueradeAllAndNodePortAddresses() throws {
        var node = Fixtures.node
        node.masqueradeAll = true
        node.masqueradeBit = 5
        node.nodePortAddresses = [CIDR("192.0.2.10/32")!, CIDR("198.51.100.0/25")!, CIDR("2001:db8:0:2::/64")!]
        try check("masquerade-all", ServiceMap(services: [Fixtures.echoServer, Fixtures.web]), node: node)
    }

    func testTrafficPoliciesLocal() throws {
        try check("traffic-policies", ServiceMap(services: [Fixtures.echoServer, Fixtures.localLoadBalancer, Fixtures.remoteOnly,
                                                            Fixtures.rollingLocal, Fixtures.internalLocal,
                                                            Fixtures.internalElsewhere]))
    }

    func testTopologyHints() throws {
        try check("topology-hints", ServiceMap(services: [Fixtures.zoned, Fixtures.partlyZoned, Fixtures.sameNode]))
    }

    func testLoadBalancerSourceRanges() throws {
        try check("source-ranges", ServiceMap(services: [Fixtures.rangedLB, Fixtures.rangedLocal, Fixtures.echoServer]))
    }

    func testSessionAffinity() throws {
        try check("session-affinity", ServiceMap(services: [Fixtures.sticky, Fixtures.stickyLocal, Fixtures.echoServer]))
    }

    func testEndpointCounters() throws {
        try check("endpoint-counters", ServiceMap(services: [Fixtures.echoServer, Fixtures.web]), counters: true)
    }

    func testNoServices() throws {
        try check("empty", ServiceMap(services: []), node: NodeConfig())
    }
}
