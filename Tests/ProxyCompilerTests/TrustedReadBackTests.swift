import XCTest
import ServiceModel
import ServiceTestSupport
@testable import Nftables
@testable import ProxyCompiler

/// The digests the compiler writes, and the trusted read-back that relies on them: which
/// keys it looks up, and that what it puts together is what the kernel holds.
final class TrustedReadBackTests: XCTestCase {
    private let node = NodeConfig(nodeName: "node-1", nodeIPs: [IPAddress("192.0.2.10")!],
                                  clusterCIDRs: [CIDR("198.19.0.0/16")!])

    private func table(_ map: ServiceMap, counters: Bool = false, family: TableFamily = .ip) throws -> Table {
        var node = node
        node.endpointCounters = counters
        return try XCTUnwrap(Compiler(node: node).compile(map).ruleset.table(family, RulesetLayout.tableName))
    }

    /// Every frontend's digest in the digest sets is the digest of what the table's
    /// backends maps hold for it (the definition, computed from the table), for random maps
    /// with every feature, with and without counters, in both families.
    func testTheCompilerWritesTheDigestOfTheTablesBackends() throws {
        var checked = 0
        for seed in 1...20 {
            var random = RandomServices(seed: UInt64(seed))
            let map = random.map(size: 25)
            for counters in [false, true] {
                for family in [TableFamily.ip, .ip6] {
                    let table = try table(map, counters: counters, family: family)
                    let computed = DerivedKeys.digests(of: table)
                    let written = TrustedReadBack.writtenDigests(in: table)
                    XCTAssertEqual(Set(written.keys), Set(computed.keys), "seed \(seed): frontends with backends have a digest")
                    for (frontend, digest) in written {
                        XCTAssertEqual(digest, computed[frontend], "seed \(seed) \(family) \(frontend)")
                        checked += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(checked, 500)
    }

    /// A incremental compile writes the same digests as a full one (its elements are the
    /// same; `CompiledServicesTests` checks them all): here, the digest elements of a
    /// changed service after a change carry the new digest.
    func testAnIncrementalChangeWritesTheNewDigest() throws {
        let before = GeneratedServiceMaps.threeEndpointServices(20)
        let after = GeneratedServiceMaps.threeEndpointServices(20, replacing: (service: 4, endpoint: "198.19.9.9"))
        var compiled = CompiledServices(node: node, map: before)
        let change = compiled.apply(after)
        let changed = try XCTUnwrap(change.after.table(.ip, RulesetLayout.tableName))
        let full = try table(after, counters: node.endpointCounters)
        let fullDigests = Set(full.sets.filter { FrontendDigest.setNames.contains($0.name) }.flatMap(\.elements))
        let digests = changed.sets.filter { FrontendDigest.setNames.contains($0.name) }.flatMap(\.elements)
        XCTAssertEqual(digests.count, 2, "its ClusterIP and its NodePort")
        for element in digests {
            XCTAssertTrue(fullDigests.contains(element), "\(element) is not the full compile's")
        }
        let old = try table(before, counters: node.endpointCounters)
        let oldDigests = Set(old.sets.filter { FrontendDigest.setNames.contains($0.name) }.flatMap(\.elements))
        XCTAssertTrue(oldDigests.isDisjoint(with: digests), "the moved endpoint changes both digests")
    }

    /// A, then B: one endpoint of one service moved, one service added, one removed.
    private func maps() -> (a: ServiceMap, b: ServiceMap, moved: [[Value]], removed: [[Value]]) {
        let a = GeneratedServiceMaps.threeEndpointServices(40)
        var services = GeneratedServiceMaps.threeEndpointServices(41, replacing: (service: 7, endpoint: "198.19.9.9")).services
        let removed = services.remove(at: 12)
        let frontends = { (index: Int) -> [[Value]] in
            [[.address(IPAddress("198.18.0.\(index + 1)")!), .proto(6), .port(80)], [.proto(6), .port(UInt16(30000 + index))]]
        }
        XCTAssertEqual(removed.name.name, "svc-012")
        return (a, ServiceMap(services: services), frontends(7), frontends(12))
    }

    /// What a read-back has before it reads the derived maps: everything, their elements aside.
    private func dumped(_ table: Table) -> Table {
        let derived = DerivedKeys(table)
        var copy = table
        for index in copy.sets.indices where derived.maps.contains(copy.sets[index].name) { copy.sets[index].elements = [] }
        return copy
    }

    func testOnlyTheFrontendsWhoseDigestDiffersAreLookedUpAndTheTableIsPutTogetherAsTheKernelHoldsIt() throws {
        let (a, b, moved, removed) = maps()
        for counters in [false, true] {
            let held = GenerationStamp.stamped(try table(a, counters: counters), elements: [GenerationStamp.element(41)])
            let read = dumped(held)
            let derived = DerivedKeys(read)
            let desired = try table(b, counters: counters)
            let trust = try XCTUnwrap(TrustedReadBack(kernel: read, derived: derived, desired: desired, generation: 41))
            XCTAssertEqual(trust.trustedFrontends.count, 2 * 40 - 4, "every frontend of A but the moved and the removed service's")
            var lookedUp = Set<[Value]>()
            for map in derived.maps.sorted() {
                let keys = try XCTUnwrap(trust.keysToLookUp(of: map, in: read, derived: derived))
                lookedUp.formUnion(keys.map { Array($0.dropLast()) })
                let real = try XCTUnwrap(held.sets.first { $0.name == map })
                let byKey = Dictionary(uniqueKeysWithValues: real.elements.map { ($0.key, $0) })
                let together = trust.elements(of: map, lookedUp: keys.compactMap { byKey[$0] })
                XCTAssertEqual(together.count, real.elements.count, "\(map)")
                XCTAssertEqual(Set(together), Set(real.elements), "\(map): put together differently from what the kernel holds")
            }
            XCTAssertEqual(lookedUp, Set(moved + removed), "only the moved and the removed service's frontends")
        }
    }

    func testWithoutACurrentStampNothingIsTrusted() throws {
        let (a, b, _, _) = maps()
        let desired = try table(b)
        for stamp in [[], [GenerationStamp.element(40)], [GenerationStamp.element(41), GenerationStamp.element(42)]] {
            let read = dumped(GenerationStamp.stamped(try table(a), elements: stamp))
            XCTAssertNil(TrustedReadBack(kernel: read, derived: DerivedKeys(read), desired: desired, generation: 41), "\(stamp)")
        }
        let unstamped = dumped(try table(a))
        XCTAssertNil(TrustedReadBack(kernel: unstamped, derived: DerivedKeys(unstamped), desired: desired, generation: 41))
    }

    /// A frontend without a digest element in the kernel is looked up; so is every frontend
    /// of a map the desired table declares otherwise.
    func testAFrontendWithoutItsDigestIsLookedUp() throws {
        let (a, _, _, _) = maps()
        var held = GenerationStamp.stamped(try table(a), elements: [GenerationStamp.element(7)])
        let digests = try XCTUnwrap(held.sets.firstIndex { $0.name == FrontendDigest.setName })
        let stripped = held.sets[digests].elements.removeFirst().key
        let read = dumped(held)
        let derived = DerivedKeys(read)
        let trust = try XCTUnwrap(TrustedReadBack(kernel: read, derived: derived, desired: try table(a), generation: 7))
        let keys = derived.maps.flatMap { trust.keysToLookUp(of: $0, in: read, derived: derived) ?? [] }
        XCTAssertEqual(Set(keys.map { Array($0.dropLast()) }), [stripped])

        var redeclared = try table(a)
        let backends = try XCTUnwrap(redeclared.sets.firstIndex { $0.name == RulesetLayout.SetName.serviceBackends(3) })
        redeclared.sets[backends].data = .fields(.types([.ipv4Address]))
        let otherwise = try XCTUnwrap(TrustedReadBack(kernel: read, derived: derived, desired: redeclared, generation: 7))
        XCTAssertEqual(otherwise.keysToLookUp(of: RulesetLayout.SetName.serviceBackends(3), in: read, derived: derived)?.count,
                       40 * 3, "every key of a map declared otherwise")
    }
}
