import Foundation
import Nftables
import ProxyCompiler
import ProxyEngine
import ProxyEngineTesting
import ServiceModel
import XCTest

/// Nodes, service maps and checks shared by the engine tests.
enum EngineFixtures {
    static let node = NodeConfig(nodeName: "node-1", nodeIPs: [IPAddress("192.0.2.10")!],
                                 clusterCIDRs: [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])

    /// `count` services, one TCP port each, with one endpoint on another node.
    static func manyServices(_ count: Int) -> ServiceMap {
        ServiceMap(services: (0..<count).map { index in
            Service(name: ServiceName(namespace: "ns", name: String(format: "svc-%05d", index)),
                    clusterIPs: [IPAddress("198.18.\(index / 250).\(index % 250 + 1)")!],
                    ports: [ServicePort(name: "http", transport: .tcp, port: 80,
                                        endpoints: [Endpoint(address: IPAddress("198.19.\(index / 250).\(index % 250 + 1)")!,
                                                             port: 8080, nodeName: "node-2")])])
        })
    }

    /// `count` services with three endpoints each and a NodePort; `replacing` swaps the
    /// first endpoint of one service for another address.
    static func threeEndpointServices(_ count: Int, replacing: (service: Int, endpoint: String)? = nil) -> ServiceMap {
        var list: [Service] = []
        for index in 0..<count {
            var endpoints = (1...3).map { Endpoint(address: IPAddress("198.19.\(index / 200 + 1).\(index % 200 + 10 + $0)")!, port: 8080) }
            if let replacing, replacing.service == index {
                endpoints[0].address = IPAddress(replacing.endpoint)!
            }
            list.append(Service(name: ServiceName(namespace: "ns", name: String(format: "svc-%03d", index)),
                                clusterIPs: [IPAddress("198.18.\(index / 250).\(index % 250 + 1)")!],
                                ports: [ServicePort(name: "http", transport: .tcp, port: 80,
                                                    nodePort: UInt16(30000 + index), endpoints: endpoints)]))
        }
        return ServiceMap(services: list)
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
        let held = Ruleset(tables: expected.tables.compactMap { kernel.tables.table($0.family, $0.name) })
        XCTAssertEqual(held.canonical(keepingSizes: false), expected.canonical(keepingSizes: false),
                       "\(message): the fake differs from a full compile", file: file, line: line)
        let fresh = try RulesetSync(kernel: kernel).sync(to: expected)
        XCTAssertEqual(fresh.operations, 0, "\(message): a fresh sync would commit \(fresh.summaries)", file: file, line: line)
    }
}
