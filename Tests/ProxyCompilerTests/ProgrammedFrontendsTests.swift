import Nftables
@testable import ProxyCompiler
import ServiceModel
import ServiceTestSupport
import XCTest

/// Reading frontends back out of a compiled ruleset gives the map's frontends: every
/// ClusterIP, external address and NodePort with its endpoints, in both families.
final class ProgrammedFrontendsTests: XCTestCase {
    private let node = NodeConfig(nodeName: "node-1", nodeIPs: [IPAddress("192.0.2.10")!],
                                  clusterCIDRs: [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])

    /// The frontends the compiler serves for a map (conflicts resolved), by key, with the
    /// targets it balances each to.
    private func expected(_ map: ServiceMap) -> [ProgrammedFrontend.Key: Set<ProgrammedFrontend.Target>] {
        var frontends: [ProgrammedFrontend.Key: Set<ProgrammedFrontend.Target>] = [:]
        for family in IPFamily.allCases {
            for frontend in ProxyCompiler.frontends(of: map, family: family).frontends {
                let key = ProgrammedFrontend.Key(family: family, address: frontend.address, transport: frontend.transport,
                                                 port: frontend.port)
                frontends[key] = Set(frontend.endpoints.map { ProgrammedFrontend.Target(address: $0.address, port: $0.port) })
            }
        }
        return frontends
    }

    func testReadingACompiledRulesetGivesTheMapsFrontends() {
        for seed in 1...20 {
            var random = RandomServices(seed: UInt64(seed))
            let map = random.map(size: 40)
            let read = ProgrammedFrontend.read(Compiler(node: node).compile(map).ruleset)
            let want = expected(map)
            XCTAssertEqual(Set(read.keys), Set(want.keys), "seed \(seed)")
            for (key, frontend) in read {
                XCTAssertEqual(Set(frontend.targets), want[key], "seed \(seed) \(key)")
                XCTAssertEqual(frontend.targets.count, Set(frontend.targets).count, "seed \(seed) \(key): a slot twice")
            }
        }
    }

    func testChangesListOnlyWhatDiffers() {
        var random = RandomServices(seed: 7)
        let before = random.map(size: 40)
        let compiler = Compiler(node: node)
        XCTAssertEqual(FrontendChange.changes(from: compiler.compile(before).ruleset, to: compiler.compile(before).ruleset), [])
        let after = random.mutate(before, size: 40)
        let changes = FrontendChange.changes(from: compiler.compile(before).ruleset, to: compiler.compile(after).ruleset)
        let old = expected(before), new = expected(after)
        let differing = Set(old.keys).union(new.keys).filter { old[$0] != new[$0] }
        XCTAssertEqual(Set(changes.map(\.key)), differing)
        XCTAssertFalse(differing.isEmpty, "the mutation changed nothing: the test would prove nothing")
    }
}
