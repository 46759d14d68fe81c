import Foundation
import Netlink
import Nftables
import ProxyCompiler
import ProxyEngine
import ProxyEngineTesting
import ServiceModel
import XCTest

/// `RulesetSync` against the in-memory kernel: smallest batches, no-op re-syncs, repair after
/// a foreign writer, retries when a writer overtakes a commit.
final class RulesetSyncTests: XCTestCase {
    private let node = NodeConfig(nodeName: "node-1", clusterCIDRs: [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])

    private func compile(_ map: ServiceMap) -> Ruleset { EngineFixtures.compile(map, node: node) }
    private func services(_ count: Int, replacing: (service: Int, endpoint: String)? = nil) -> ServiceMap {
        EngineFixtures.threeEndpointServices(count, replacing: replacing)
    }

    func testSecondSyncOfTheSameRulesetCommitsNothing() throws {
        let kernel = FakeKernel()
        let desired = compile(services(20))
        XCTAssertGreaterThan(try RulesetSync(kernel: kernel).sync(to: desired).operations, 0)
        let engine = RulesetSync(kernel: kernel)
        let fresh = try engine.sync(to: desired)
        XCTAssertTrue(fresh.readBack)
        XCTAssertEqual(fresh.operations, 0, "\(fresh.summaries)")
        let again = try engine.sync(to: desired)
        XCTAssertFalse(again.readBack)
        XCTAssertEqual(again.operations, 0)
    }

    /// A read-back normally looks up only the reachable backends elements; after the kernel
    /// refused a commit (a map full of unreachable elements refuses every add) the next one
    /// reads every element, and the ones after it are fast again.
    func testARefusedCommitMakesTheNextReadBackComplete() throws {
        let kernel = FakeKernel()
        let engine = RulesetSync(kernel: kernel)
        try engine.sync(to: compile(services(3)))
        XCTAssertEqual(kernel.tablesReadCompletely, 0)
        kernel.failNextCommit(with: .rejected(operation: "add element", errno: ENFILE, kernelMessage: nil))
        XCTAssertThrowsError(try engine.sync(to: compile(services(4))))
        XCTAssertTrue(engine.readsEveryElementNext)
        let repaired = try engine.sync(to: compile(services(4)))
        XCTAssertTrue(repaired.readBack)
        XCTAssertEqual(kernel.tablesReadCompletely, 2, "both tables read completely once")
        XCTAssertFalse(engine.readsEveryElementNext)
        engine.invalidate()
        try engine.sync(to: compile(services(5)))
        XCTAssertEqual(kernel.tablesReadCompletely, 2)
    }

    func testEndpointChangeTouchesOnlyThatServicesObjects() throws {
        let engine = RulesetSync(kernel: FakeKernel())
        try engine.sync(to: compile(services(200)))

        let report = try engine.sync(to: compile(services(200, replacing: (service: 42, endpoint: "198.19.9.99"))))
        let clusterIPShard = EndpointTrafficLayout.shard(of: [.address(IPAddress("198.18.0.43")!), .proto(6), .port(80)])
        let nodePortShard = EndpointTrafficLayout.shard(of: [.proto(6), .port(30042)])
        // svc-042's three numgen slots behind its ClusterIP and behind its NodePort are rewritten
        // (the endpoints are numbered in sorted order, so one replacement renumbers them), and the
        // new endpoint gets its hairpin entry. Its old endpoint 198.19.1.53 still serves svc-041.
        // Both frontends' digest elements are replaced, and the commit ends by moving both
        // tables' generation stamps.
        XCTAssertEqual(report.summaries.map(withoutDigests), [
            "add element ip nftproxy hairpin-endpoints (1 elements, first { 198.19.9.99 . 198.19.9.99 })",
            "delete element ip nftproxy frontend-digests (1 elements, first { 198.18.0.43 . tcp . 80 })",
            "add element ip nftproxy frontend-digests (1 elements, first { 198.18.0.43 . tcp . 80 comment \"d=…\" })",
            "delete element ip nftproxy nodeport-digests (1 elements, first { tcp . 30042 })",
            "add element ip nftproxy nodeport-digests (1 elements, first { tcp . 30042 comment \"d=…\" })",
            "delete element ip nftproxy service-backends-3 (3 elements, first { 198.18.0.43 . tcp . 80 . 0 : 198.19.1.53 . 8080 })",
            "add element ip nftproxy service-backends-3 (3 elements, first { 198.18.0.43 . tcp . 80 . 0 comment \"- remote\" : 198.19.1.54 . 8080 })",
            "delete element ip nftproxy nodeport-backends-3 (3 elements, first { tcp . 30042 . 0 : 198.19.1.53 . 8080 })",
            "add element ip nftproxy nodeport-backends-3 (3 elements, first { tcp . 30042 . 0 comment \"- remote\" : 198.19.1.54 . 8080 })",
            // Endpoint counters: only the replaced endpoint's pair is retired, whether or not a
            // packet made its elements; the others keep their counts.
            // Each frontend's pairs sit in its shard's sets.
            "destroy element ip nftproxy endpoint-connections-\(clusterIPShard) (1 elements, first { 198.18.0.43 . tcp . 80 . 198.19.1.53 . 8080 })",
            "destroy element ip nftproxy nodeport-endpoint-connections-\(nodePortShard) (1 elements, first { tcp . 30042 . 198.19.1.53 . 8080 })",
            "destroy element ip nftproxy endpoint-traffic-\(clusterIPShard) (1 elements, first { 198.18.0.43 . tcp . 80 . 198.19.1.53 . 8080 })",
            "destroy element ip nftproxy nodeport-endpoint-traffic-\(nodePortShard) (1 elements, first { tcp . 30042 . 198.19.1.53 . 8080 })",
            "delete element ip nftproxy generation-stamp (1 elements, first { 2 })",
            "add element ip nftproxy generation-stamp (1 elements, first { 3 })",
            "delete element ip6 nftproxy generation-stamp (1 elements, first { 2 })",
            "add element ip6 nftproxy generation-stamp (1 elements, first { 3 })",
        ])
        // The stamps are not counted as elements.
        XCTAssertEqual(report.elementsRemoved, 8)
        XCTAssertEqual(report.elementsAdded, 9)
        XCTAssertEqual(report.elementsRetired, 4)
        XCTAssertNotNil(report.previous)
    }

    func testACommitOvertakenByAnotherWriterIsReplannedAndRetried() throws {
        let kernel = FakeKernel()
        let engine = RulesetSync(kernel: kernel)
        try engine.sync(to: compile(services(3)))
        // The other writer lands after our plan; it also removes one of our elements.
        kernel.beforeNextCommit { kernel in
            var other = Transaction()
            other.append(.deleteElements(.ip, table: RulesetLayout.tableName,
                                         set: NamedSet(name: RulesetLayout.SetName.clusterIPs, key: .types([.ipv4Address])),
                                         [SetElement(key: [.address(IPAddress("198.18.0.1")!)])]))
            try kernel.foreignCommit(other)
        }
        let report = try engine.sync(to: compile(services(4)))
        XCTAssertEqual(report.retries, 1, "\(report.summaries)")
        XCTAssertTrue(report.readBack)
        // The replanned batch restores what the other writer removed.
        XCTAssertTrue(report.summaries.contains { $0.hasPrefix("add element ip nftproxy cluster-ips") }, "\(report.summaries)")
        XCTAssertEqual(try RulesetSync(kernel: kernel).sync(to: compile(services(4))).operations, 0)
    }

    func testAWriterThatNeverStopsMakesTheSyncGiveUp() throws {
        let kernel = FakeKernel()
        let engine = RulesetSync(kernel: kernel)
        engine.maximumAttempts = 3
        func interfere() { kernel.beforeNextCommit { $0.foreignCommitElsewhere(); interfere() } }
        interfere()
        XCTAssertThrowsError(try engine.sync(to: compile(services(2)))) { error in
            guard case NetlinkError.generationChanged = error else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(kernel.commits, [])
    }

    func testAnIncrementalCommitOvertakenByAnotherWriterCommitsNothing() throws {
        let kernel = FakeKernel()
        let engine = RulesetSync(kernel: kernel)
        try engine.sync(to: compile(services(3)))
        let before = kernel.tables.table(.ip, RulesetLayout.tableName)
        kernel.beforeNextCommit { $0.foreignCommitElsewhere() }

        var transaction = Transaction()
        transaction.append(.flushChain(.ip, table: RulesetLayout.tableName, chain: "services"))
        guard case .overtaken = try engine.commitChange(transaction) else {
            return XCTFail("a change planned against an old generation must not land")
        }
        XCTAssertEqual(kernel.tables.table(.ip, RulesetLayout.tableName), before)
        guard case .notCurrent = try engine.commitChange(transaction) else { return XCTFail("the engine must know it is behind") }
        // The caller then syncs in full, which reads back.
        XCTAssertTrue(try engine.sync(to: compile(services(3))).readBack)
    }
}

extension RulesetSyncTests {
    func testAChainItCannotReadIsRewrittenAndASetItCannotReadReplacesTheTable() throws {
        let kernel = FakeKernel()
        let desired = compile(services(3))
        try RulesetSync(kernel: kernel).sync(to: desired)

        kernel.untrustedChains = [RulesetLayout.ChainName.services]
        let rewritten = try RulesetSync(kernel: kernel).sync(to: desired)
        XCTAssertEqual(rewritten.summaries.first, "flush chain ip nftproxy services", "\(rewritten.summaries)")
        XCTAssertEqual(rewritten.transaction.operations.filter {
            if case .addRule(.ip, _, RulesetLayout.ChainName.services, _) = $0 { return true } else { return false }
        }.count, desired.table(.ip, RulesetLayout.tableName)?.chains.first { $0.name == RulesetLayout.ChainName.services }?.rules.count)

        kernel.untrustedChains = []
        kernel.unreadableSets = [RulesetLayout.SetName.clusterIPs]
        let replaced = try RulesetSync(kernel: kernel).sync(to: desired)
        // Both tables have such a set: each is replaced as a whole, nothing else is committed.
        XCTAssertEqual(replaced.summaries.filter { $0.contains("table") },
                       ["add table ip nftproxy", "delete table ip nftproxy", "add table ip nftproxy",
                        "add table ip6 nftproxy", "delete table ip6 nftproxy", "add table ip6 nftproxy"])
        XCTAssertFalse(replaced.summaries.contains {
            ($0.hasPrefix("delete element") && !$0.contains(GenerationStamp.setName)) || $0.hasPrefix("flush")
        }, "\(replaced.summaries)")
    }
}

/// A summary with every frontend digest (`d=` and 16 hex digits) shown as `d=…`.
func withoutDigests(_ summary: String) -> String {
    summary.replacingOccurrences(of: "d=[0-9a-f]{16}", with: "d=…", options: .regularExpression)
}
