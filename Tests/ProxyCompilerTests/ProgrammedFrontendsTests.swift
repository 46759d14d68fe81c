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
    /// With a traffic policy Local: the targets read back are the local ones for a ClusterIP
    /// (internal policy), and for external frontends every endpoint plus the local ones apart.
    private func expected(_ map: ServiceMap) -> [ProgrammedFrontend.Key: Expected] {
        var frontends: [ProgrammedFrontend.Key: Expected] = [:]
        func targets(_ endpoints: [Endpoint]) -> Set<ProgrammedFrontend.Target> {
            Set(endpoints.map { ProgrammedFrontend.Target(address: $0.address, port: $0.port) })
        }
        for family in IPFamily.allCases {
            for frontend in ProxyCompiler.frontends(of: map, family: family, node: node.nodeName, zone: node.zone).frontends {
                let key = ProgrammedFrontend.Key(family: family, address: frontend.address, transport: frontend.transport,
                                                 port: frontend.port)
                switch (frontend.kind, frontend.local) {
                case (_, nil):
                    frontends[key] = Expected(targets: targets(frontend.endpoints), local: nil)
                case (_, _?) where frontend.endpoints.isEmpty:
                    frontends[key] = Expected(targets: targets(frontend.endpoints), local: nil)
                case (.clusterIP, let local?):
                    frontends[key] = Expected(targets: targets(local), local: local.isEmpty ? [] : nil)
                case (_, let local?):
                    frontends[key] = Expected(targets: targets(frontend.endpoints), local: targets(local))
                }
            }
        }
        return frontends
    }

    private struct Expected: Equatable {
        var targets: Set<ProgrammedFrontend.Target>
        var local: Set<ProgrammedFrontend.Target>?
    }

    func testReadingACompiledRulesetGivesTheMapsFrontends() {
        for seed in 1...20 {
            var random = RandomServices(seed: UInt64(seed))
            let map = random.map(size: 40)
            let read = ProgrammedFrontend.read(Compiler(node: node).compile(map).ruleset)
            let want = expected(map)
            XCTAssertEqual(Set(read.keys), Set(want.keys), "seed \(seed)")
            for (key, frontend) in read {
                XCTAssertEqual(Expected(targets: Set(frontend.targets), local: frontend.localTargets.map(Set.init)), want[key],
                               "seed \(seed) \(key)")
                XCTAssertEqual(frontend.targets.count, Set(frontend.targets).count, "seed \(seed) \(key): a slot twice")
            }
        }
    }

    func testChangesListOnlyWhatDiffers() {
        var random = RandomServices(seed: 7)
        let before = random.map(size: 40)
        let compiler = Compiler(node: node)
        XCTAssertEqual(FrontendChange.changes(from: compiler.compile(before).ruleset, to: compiler.compile(before).ruleset), [])
        let old = expected(before)
        // Some mutations (session affinity turned on or off) change no frontend: take the
        // first of a few that does.
        var after = before, new = old
        for _ in 0..<10 where new == old {
            after = random.mutate(before, size: 40)
            new = expected(after)
        }
        let changes = FrontendChange.changes(from: compiler.compile(before).ruleset, to: compiler.compile(after).ruleset)
        let differing = Set(old.keys).union(new.keys).filter { old[$0] != new[$0] }
        XCTAssertEqual(Set(changes.map(\.key)), differing)
        XCTAssertFalse(differing.isEmpty, "the mutation changed nothing: the test would prove nothing")
    }
}
