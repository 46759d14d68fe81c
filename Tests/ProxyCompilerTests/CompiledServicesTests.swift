import Nftables
@testable import ProxyCompiler
import ServiceModel
import ServiceTestSupport
import XCTest

/// Incremental compilation (`CompiledServices`) must always agree with `Compiler.compile`.
final class CompiledServicesTests: XCTestCase {
    private let compiler = Compiler(node: Fixtures.node)

    /// Elements of each set of a table, by set name.
    private func elements(_ table: Table) -> [String: Set<SetElement>] {
        Dictionary(uniqueKeysWithValues: table.sets.map { ($0.name, Set($0.elements)) })
    }

    /// Checks that old full tables, minus the change's "before" elements, plus its "after"
    /// elements, are the new full tables, and that both partial tables declare exactly the
    /// sets and chains of the full ones.
    private func check(_ change: RulesetChange, from old: ServiceMap, to new: ServiceMap,
                       file: StaticString = #filePath, line: UInt = #line) {
        let oldRuleset = compiler.compile(old).ruleset
        let newRuleset = compiler.compile(new).ruleset
        guard !change.services.isEmpty else {
            XCTAssertEqual(change.before.tables, [], file: file, line: line)
            XCTAssertEqual(oldRuleset, newRuleset, "no service changed, yet the ruleset did", file: file, line: line)
            return
        }
        XCTAssertEqual(change.before.tables.count, 2, file: file, line: line)
        XCTAssertEqual(change.after.tables.count, 2, file: file, line: line)
        for (index, full) in newRuleset.tables.enumerated() {
            let previous = oldRuleset.tables[index], before = change.before.tables[index], after = change.after.tables[index]
            XCTAssertEqual(before.chains, previous.chains, "chains before, \(full.qualifiedName)", file: file, line: line)
            XCTAssertEqual(after.chains, full.chains, "chains after, \(full.qualifiedName)", file: file, line: line)
            XCTAssertEqual(before.sets.map(\.withoutElements), previous.sets.map(\.withoutElements), file: file, line: line)
            XCTAssertEqual(after.sets.map(\.withoutElements), full.sets.map(\.withoutElements), file: file, line: line)
            let was = elements(previous), removed = elements(before), added = elements(after), wanted = elements(full)
            for (name, wantedElements) in wanted {
                XCTAssertTrue(removed[name, default: []].isSubset(of: was[name, default: []]),
                              "\(full.qualifiedName) \(name): the change removes elements that were not there", file: file, line: line)
                XCTAssertTrue(added[name, default: []].isSubset(of: wantedElements),
                              "\(full.qualifiedName) \(name): the change adds elements that are not wanted", file: file, line: line)
                let result = was[name, default: []].subtracting(removed[name, default: []]).union(added[name, default: []])
                XCTAssertEqual(result, wantedElements, "\(full.qualifiedName) \(name)", file: file, line: line)
            }
        }
    }

    func testRandomChangesAgreeWithFullCompilation() {
        for seed in 1...40 {
            var random = RandomServices(seed: UInt64(seed))
            var map = random.map(size: 10)
            var compiled = CompiledServices(node: Fixtures.node, map: map)
            for _ in 0..<25 {
                let next = random.mutate(map, size: 12)
                let change = compiled.apply(next)
                check(change, from: map, to: next)
                if next == map { XCTAssertTrue(change.services.isEmpty) }
                map = next
            }
        }
    }

    func testNamingTheChangedServicesGivesTheSameChangeAsComparingAll() {
        for seed in 1...20 {
            var random = RandomServices(seed: UInt64(seed))
            var map = random.map(size: 10)
            var comparing = CompiledServices(node: Fixtures.node, map: map)
            var told = comparing
            for step in 0..<20 {
                let next = random.mutate(map, size: 12)
                let old = Dictionary(uniqueKeysWithValues: map.services.map { ($0.name, $0) })
                let new = Dictionary(uniqueKeysWithValues: next.services.map { ($0.name, $0) })
                var changed = Set(old.keys).union(new.keys).filter { old[$0] != new[$0] }
                // Naming an unchanged service too is harmless.
                if let unchanged = next.services.first(where: { !changed.contains($0.name) }) { changed.insert(unchanged.name) }
                let expected = comparing.apply(next)
                // Now and then without names: the two ways must keep the same state.
                let change = step % 5 == 4 ? told.apply(next) : told.apply(next, changed: changed)
                XCTAssertEqual(change.services, expected.services)
                XCTAssertEqual(change.before, expected.before)
                XCTAssertEqual(change.after, expected.after)
                map = next
            }
        }
    }

    func testAnEndpointChangeTouchesOnlyThatServicesElements() throws {
        var web = Fixtures.echoServer
        let map = ServiceMap(services: [Fixtures.dns, web, Fixtures.empty])
        var compiled = CompiledServices(node: Fixtures.node, map: map)
        web.ports[0].endpoints[1].address = Fixtures.ip("198.19.1.99")
        let change = compiled.apply(ServiceMap(services: [Fixtures.dns, web, Fixtures.empty]))
        XCTAssertEqual(change.services, [web.name])
        let after = try XCTUnwrap(change.after.table(.ip, RulesetLayout.tableName))
        let counts = Dictionary(uniqueKeysWithValues: after.sets.map { ($0.name, $0.elements.count) })
        // Its ClusterIP and NodePort frontends (1 dispatch + 1 digest + 3 backends each) and its endpoints
        // (all on node-1); every other set and map is declared but holds nothing (the
        // counting sets are the packet path's).
        XCTAssertEqual(counts, ["cluster-ips": 1, "service-ips": 1, "service-nodeports": 1, "no-endpoint-services": 0,
                                "no-endpoint-nodeports": 0, "hairpin-endpoints": 3, "frontend-digests": 1, "nodeport-digests": 1,
                                "service-backends-2": 0,
                                "service-backends-3": 3, "nodeport-backends-3": 3, "counted-frontends": 1, "counted-nodeports": 1]
                                .merging(["endpoint-connections-", "nodeport-endpoint-connections-", "endpoint-traffic-",
                                          "nodeport-endpoint-traffic-"].flatMap { prefix in (0..<16).map { (prefix + String($0), 0) } },
                                         uniquingKeysWith: { first, _ in first }))
        let before = try XCTUnwrap(change.before.table(.ip, RulesetLayout.tableName))
        let diff = TableDiff.transaction(from: before, to: after)
        // Only the replaced endpoint's counter elements change (one per frontend), and the two
        // frontends' digest elements.
        XCTAssertEqual(diff.operations.map(\.summary).count, 14, "\(diff.operations.map(\.summary))")
        XCTAssertTrue(compiled.apply(ServiceMap(services: [Fixtures.dns, web, Fixtures.empty])).services.isEmpty)
    }

    /// Session affinity: an endpoint change of an affinity service adds and deletes plain
    /// elements of its timeout's validation set, and no element carrying a jump or goto (a
    /// batch adding one makes the kernel validate the table's whole jump graph at commit);
    /// a change of its timeout moves its pairs to the set of the new timeout.
    func testAffinityChangesAddNoVerdictElementsAndFollowTheTimeout() throws {
        var sticky = Fixtures.sticky
        let map = ServiceMap(services: [Fixtures.dns, sticky])
        var compiled = CompiledServices(node: Fixtures.node, map: map)
        sticky.ports[0].endpoints[1].address = Fixtures.ip("198.19.2.99")
        let moved = ServiceMap(services: [Fixtures.dns, sticky])
        let change = compiled.apply(moved)
        check(change, from: map, to: moved)
        let diff = TableDiff.transaction(from: try XCTUnwrap(change.before.table(.ip, RulesetLayout.tableName)),
                                         to: try XCTUnwrap(change.after.table(.ip, RulesetLayout.tableName)))
        var added: [(set: String, element: SetElement)] = [], deleted: [(set: String, element: SetElement)] = []
        for operation in diff.operations {
            switch operation {
            case .addElements(_, _, let set, let elements): added += elements.map { (set.name, $0) }
            case .deleteElements(_, _, let set, let elements): deleted += elements.map { (set.name, $0) }
            default: continue
            }
        }
        let validation = RulesetLayout.SetName.affinityEndpoints(600)
        // Three frontends of the http port (ClusterIP, externalIP, LB IP) and the NodePort's set.
        XCTAssertEqual(added.filter { $0.set == validation && $0.element.key.contains(.address(Fixtures.ip("198.19.2.99"))) }.count, 3,
                       "\(added.map(\.set))")
        XCTAssertEqual(deleted.filter { $0.set == validation && $0.element.key.contains(.address(Fixtures.ip("198.19.2.81"))) }.count, 3,
                       "\(deleted.map(\.set))")
        XCTAssertEqual(added.filter { $0.set == RulesetLayout.SetName.nodePortAffinityEndpoints(600) }.count, 1)
        for (set, element) in added {
            switch element.data {
            case .verdict(.jump)?, .verdict(.goto)?: XCTFail("\(set): a jump or goto element in an endpoint change")
            default: continue
            }
        }

        sticky.sessionAffinityTimeout = 10800
        let longer = ServiceMap(services: [Fixtures.dns, sticky])
        let retimed = compiled.apply(longer)
        check(retimed, from: moved, to: longer)
        let after = try XCTUnwrap(retimed.after.table(.ip, RulesetLayout.tableName))
        XCTAssertEqual(after.sets.first { $0.name == RulesetLayout.SetName.affinityEndpoints(10800) }?.elements.count, 9)
        XCTAssertFalse(after.sets.contains { $0.name == validation }, "no service keeps clients 600 s any more")
    }

    func testConflictWarningsOfChangedServices() {
        var rival = Fixtures.empty
        rival.name = ServiceName(namespace: "aaa", name: "rival")
        rival.clusterIPs = [Fixtures.ip("198.18.0.98")]
        rival.ports[0].nodePort = 32000
        var compiled = CompiledServices(node: Fixtures.node, map: ServiceMap(services: [Fixtures.echoServer]))
        let change = compiled.apply(ServiceMap(services: [Fixtures.echoServer, rival]))
        XCTAssertEqual(change.warnings.findings, [
            .conflict(FrontendKey(address: nil, transport: .tcp, port: 32000), loser: Fixtures.echoServer.name, owner: rival.name,
                      field: "spec.ports[0].nodePort"),
        ])
        XCTAssertEqual(change.warnings, compiler.compile(ServiceMap(services: [Fixtures.echoServer, rival])).warnings)
    }
}
