import Nftables
import ProxyCompiler
import ProxyEngine
import ProxyEngineTesting
import ServiceModel
import ServiceTestSupport
import XCTest

/// A new process's first apply trusts what the previous nftproxy commit left (its generation
/// stamp is current) and reads only the frontends whose digest differs; after anyone else's
/// commit, or when asked to resync, it reads everything.
final class TrustedReadBackEngineTests: XCTestCase {
    private let node = EngineFixtures.node

    /// A, then B: one endpoint of svc-007 moved, svc-040 added, svc-012 removed.
    private let a = GeneratedServiceMaps.threeEndpointServices(40)
    private var b: ServiceMap {
        var services = GeneratedServiceMaps.threeEndpointServices(41, replacing: (service: 7, endpoint: "198.19.9.9")).services
        services.remove(at: 12)
        return ServiceMap(services: services)
    }

    func testANewProcessLooksUpOnlyTheChangedAndRemovedFrontends() throws {
        let kernel = FakeKernel()
        try ServiceProxy(node: node, kernel: kernel).apply(a)
        let report = try ServiceProxy(node: node, kernel: kernel).apply(b)
        XCTAssertEqual(kernel.tablesReadTrusted, 2, "both tables read on trust")
        XCTAssertEqual(report.sync.trustedFrontends, 2 * 40 - 4)
        // svc-007 and svc-012: a ClusterIP and a NodePort each, three slots each.
        XCTAssertEqual(report.sync.keysLookedUp, 2 * 2 * 3)
        XCTAssertEqual(kernel.keysLookedUp, 2 * 2 * 3)
        try assertHoldsFullCompilation(kernel, of: b, "after a trusted read-back")
        // And a third process finds everything trusted and nothing to do.
        let again = try ServiceProxy(node: node, kernel: kernel).apply(b)
        XCTAssertEqual(again.sync.operations, 0, "\(again.sync.summaries)")
        XCTAssertEqual(again.sync.keysLookedUp, 0)
        XCTAssertEqual(again.sync.trustedFrontends, 2 * 40)
    }

    func testAnIncrementalCommitStampsToo() throws {
        let kernel = FakeKernel()
        let proxy = ServiceProxy(node: node, kernel: kernel)
        try proxy.apply(a)
        XCTAssertEqual(try proxy.apply(b).path, .incremental)
        let report = try ServiceProxy(node: node, kernel: kernel).apply(b)
        XCTAssertEqual(report.sync.operations, 0)
        XCTAssertEqual(report.sync.trustedFrontends, 2 * 40, "the incremental commit left a current stamp and the new digests")
        XCTAssertEqual(report.sync.keysLookedUp, 0)
    }

    /// A restart that finds nothing to commit, then changes committed incrementally (the
    /// daemon's life after a restart): those commits stamp, and the next restart trusts.
    func testChangesAfterARestartThatCommittedNothingStampToo() throws {
        let kernel = FakeKernel()
        try ServiceProxy(node: node, kernel: kernel).apply(a)
        let restarted = ServiceProxy(node: node, kernel: kernel)
        XCTAssertEqual(try restarted.apply(a).sync.operations, 0)
        XCTAssertEqual(try restarted.apply(b).path, .incremental)
        let next = try ServiceProxy(node: node, kernel: kernel).apply(b)
        XCTAssertEqual(next.sync.trustedFrontends, 2 * 40)
        XCTAssertEqual(next.sync.keysLookedUp, 0)
        XCTAssertEqual(next.sync.operations, 0)
    }

    /// A foreign change to our table moves the generation past the stamp: everything is read,
    /// and the change is repaired.
    func testAForeignChangeToOurTableIsReadInFullAndRepaired() throws {
        let kernel = FakeKernel()
        try ServiceProxy(node: node, kernel: kernel).apply(a)
        let table = try XCTUnwrap(kernel.tables.table(.ip, RulesetLayout.tableName))
        let backends = try XCTUnwrap(table.sets.first { $0.name == RulesetLayout.SetName.serviceBackends(3) })
        // Someone deletes one backends element of svc-020, which B does not change.
        let victim = try XCTUnwrap(backends.elements.first { $0.key.first == .address(IPAddress("198.18.0.21")!) })
        var foreign = Transaction()
        foreign.deleteElements([victim], from: backends, family: .ip, table: RulesetLayout.tableName)
        try kernel.foreignCommit(foreign)

        let report = try ServiceProxy(node: node, kernel: kernel).apply(b)
        XCTAssertEqual(kernel.tablesReadTrusted, 0)
        XCTAssertNil(report.sync.trustedFrontends)
        let repaired = try XCTUnwrap(kernel.tables.table(.ip, RulesetLayout.tableName)?.sets
            .first { $0.name == RulesetLayout.SetName.serviceBackends(3) })
        XCTAssertTrue(repaired.elements.contains { $0.key == victim.key }, "the deleted element is put back")
        try assertHoldsFullCompilation(kernel, of: b, "after a foreign change")
    }

    func testACommitElsewhereMakesTheReadBackFullButChangesNothingElse() throws {
        let kernel = FakeKernel()
        try ServiceProxy(node: node, kernel: kernel).apply(a)
        kernel.foreignCommitElsewhere()
        let report = try ServiceProxy(node: node, kernel: kernel).apply(b)
        XCTAssertEqual(kernel.tablesReadTrusted, 0)
        XCTAssertNil(report.sync.trustedFrontends)
        try assertHoldsFullCompilation(kernel, of: b, "after a commit elsewhere")
    }

    /// A resync asked of an engine that has synced (the daemon's periodic one) reads
    /// everything, even with a current stamp; the first apply of a new engine may trust.
    func testARequestedResyncReadsEverything() throws {
        let kernel = FakeKernel()
        let proxy = ServiceProxy(node: node, kernel: kernel)
        proxy.invalidate()  // nothing synced yet: the first apply still trusts
        try proxy.apply(a)
        let first = ServiceProxy(node: node, kernel: kernel)
        first.invalidate()
        try first.apply(a)
        XCTAssertEqual(kernel.tablesReadTrusted, 2)
        first.invalidate()
        let resync = try first.apply(b)
        XCTAssertEqual(kernel.tablesReadTrusted, 2, "the resync read everything")
        XCTAssertNil(resync.sync.trustedFrontends)
        try assertHoldsFullCompilation(kernel, of: b, "after a resync")
    }
}
