import Foundation
import Nftables
import ProxyCompiler
import ProxyEngine
import ProxyEngineTesting
import ServiceModel
import ServiceTestSupport
import XCTest

/// Nodes, service maps and checks shared by the engine tests.
enum EngineFixtures {
    static let node = NodeConfig(nodeName: "node-1", nodeIPs: [IPAddress("192.0.2.10")!],
                                 clusterCIDRs: [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])

    /// `count` services, one TCP port each, with one endpoint on another node.
    static func manyServices(_ count: Int) -> ServiceMap { GeneratedServiceMaps.manyServices(count) }

    /// `count` services with three endpoints each and a NodePort (see `GeneratedServiceMaps`).
    static func threeEndpointServices(_ count: Int, replacing: (service: Int, endpoint: String)? = nil) -> ServiceMap {
        GeneratedServiceMaps.threeEndpointServices(count, replacing: replacing)
    }

    static func compile(_ map: ServiceMap, node: NodeConfig = node) -> Ruleset {
        Compiler(node: node).compile(map).ruleset
    }
}

extension XCTestCase {
    /// Whether the fake holds exactly a full compile of `map` (set sizes aside, which the
    /// kernel keeps from creation), and a fresh engine (a new process) finds nothing to commit.
    func assertHoldsFullCompilation(_ kernel: FakeKernel, of map: ServiceMap, node: NodeConfig = EngineFixtures.node,
                                    _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = EngineFixtures.compile(map, node: node)
        let held = Ruleset(tables: expected.tables.compactMap {
            kernel.tables.table($0.family, $0.name).map(GenerationStamp.unstamped)
        })
        XCTAssertEqual(held.canonical(keepingSizes: false), expected.canonical(keepingSizes: false),
                       "\(message): the fake differs from a full compile", file: file, line: line)
        let fresh = try RulesetSync(kernel: kernel).sync(to: expected)
        XCTAssertEqual(fresh.operations, 0, "\(message): a fresh sync would commit \(fresh.summaries)", file: file, line: line)
    }
}
