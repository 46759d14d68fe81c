import Foundation
import Conntrack
import Netlink
import Nftables
import ProxyDaemon
import ProxyEngine
import ProxyEngineTesting
import ServiceModel
import Synchronization
import XCTest

/// Hands a value to another isolation domain; the test guarantees the only shared part
/// (an atomic) is safe to touch from both.
struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// A source the test feeds by hand.
final class ManualSource: ServiceSnapshotSource {
    private struct State {
        var ready = false
        var services: [ServiceName: Service] = [:]
        var changed: Set<ServiceName>? = nil
        var dirty = false
        var snapshots = 0
    }
    private let state = Mutex(State())

    var hasPendingChanges: Bool { state.withLock { $0.ready && $0.dirty } }
    var snapshotsTaken: Int { state.withLock { $0.snapshots } }

    func makeReady() { state.withLock { $0.ready = true; $0.dirty = true } }

    func set(_ service: Service) {
        state.withLock { state in
            state.services[service.name] = service
            state.changed?.insert(service.name)
            state.dirty = true
        }
    }

    func takeSnapshot() -> ServiceSnapshot? {
        state.withLock { state in
            guard state.ready else { return nil }
            defer { state.changed = []; state.dirty = false; state.snapshots += 1 }
            return ServiceSnapshot(map: ServiceMap(services: Array(state.services.values)), changed: state.changed)
        }
    }

    func restore(_ snapshot: ServiceSnapshot) {
        state.withLock { state in
            if let changed = snapshot.changed, state.changed != nil { state.changed?.formUnion(changed) } else { state.changed = nil }
            state.dirty = true
        }
    }
}

/// The sync loop against FakeKernel: nothing before the first lists, a full sync first,
/// named incremental changes after, coalescing, retries, periodic full syncs, health.
final class SyncLoopTests: XCTestCase {
    private let node = NodeConfig(nodeName: "node-1", nodeIPs: [IPAddress("192.0.2.10")!],
                                  clusterCIDRs: [CIDR("198.19.0.0/16")!])

    private func service(_ name: String, _ last: Int, endpoints: Int = 2) -> Service {
        Service(name: ServiceName(namespace: "default", name: name), clusterIPs: [IPAddress("198.18.0.\(last)")!],
                ports: [ServicePort(name: "http", transport: .tcp, port: 80, endpoints: (0..<endpoints).map {
                    Endpoint(address: IPAddress("198.19.\(last).\($0 + 1)")!, port: 8080)
                })])
    }

    /// Waits (up to 10 s) until `condition` holds; the loop runs on its own.
    private func eventually(_ what: String, _ condition: () async -> Bool) async {
        for _ in 0..<1000 {
            if await condition() { return }
            try? await Task.sleep(for: .milliseconds(10))
        }
        XCTFail("never happened: \(what)")
    }

    func testProgramsNothingUntilReadyThenFullThenNamedChanges() async throws {
        let kernel = FakeKernel()
        let source = ManualSource()
        let health = ProxyHealth(healthTimeout: .seconds(3600))
        let loop = SyncLoop(node: node, kernel: kernel, source: source, health: health,
                            settings: SyncSettings(minSyncPeriod: .zero))
        let task = Task { await loop.run() }
        defer { task.cancel() }

        source.set(service("a", 1))
        loop.changesArrived()
        try await Task.sleep(for: .milliseconds(200))
        let before = await loop.reports.count
        XCTAssertEqual(before, 0, "synced before the first lists were complete")
        XCTAssertFalse(health.report().healthzHealthy)

        source.makeReady()
        loop.changesArrived()
        await eventually("the first sync") { await loop.reports.count == 1 }
        let first = await loop.reports[0]
        XCTAssertEqual(first.fullSyncReason, .firstApply)
        XCTAssertTrue(health.report().healthy)

        source.set(service("b", 2))
        loop.changesArrived()
        await eventually("the second sync") { await loop.reports.count == 2 }
        let second = await loop.reports[1]
        XCTAssertTrue(second.incremental)
        XCTAssertEqual(second.changedServices, [ServiceName(namespace: "default", name: "b")])
    }

    func testChangesWithinTheMinimumSyncPeriodWaitForIt() async throws {
        let kernel = FakeKernel()
        let source = ManualSource()
        source.makeReady()
        source.set(service("a", 1))
        let loop = SyncLoop(node: node, kernel: kernel, source: source,
                            health: ProxyHealth(healthTimeout: .seconds(3600)),
                            settings: SyncSettings(minSyncPeriod: .seconds(600)))
        let task = Task { await loop.run() }
        defer { task.cancel() }
        await eventually("the first sync") { await loop.reports.count == 1 }
        for index in 2...20 {
            source.set(service("s\(index)", index))
            loop.changesArrived()
        }
        try await Task.sleep(for: .milliseconds(300))
        let count = await loop.reports.count
        XCTAssertEqual(count, 1, "a sync ran within the 600 s minimum sync period")
        XCTAssertTrue(source.hasPendingChanges)
    }

    /// A kernel whose next commit the test can make fail from outside the loop.
    final class SwitchableKernel: ProxyKernel {
        let failNext = Atomic<Bool>(false)
        let inner = FakeKernel()

        func generation() throws(NetlinkError) -> UInt32 { try inner.generation() }
        func commit(_ transaction: Transaction, expectedGeneration: UInt32?) throws(NetlinkError) {
            if failNext.exchange(false, ordering: .relaxed) {
                throw .rejected(operation: "injected", errno: EINVAL, kernelMessage: nil)
            }
            try inner.commit(transaction, expectedGeneration: expectedGeneration)
        }
        func readTable(_ family: TableFamily, _ name: String) throws(NetlinkError) -> TableReadBack? {
            try inner.readTable(family, name)
        }
        func conntrackFlows(family: IPFamily) throws(NetlinkError) -> [ConntrackFlow] { try inner.conntrackFlows(family: family) }
        func deleteConntrackFlows(matching filters: [ConntrackFilter]) throws(NetlinkError) -> Int {
            try inner.deleteConntrackFlows(matching: filters)
        }
    }

    func testAFailedSyncIsRetriedWithTheChangesItCarried() async throws {
        let source = ManualSource()
        source.makeReady()
        source.set(service("a", 1))
        let kernel = SwitchableKernel()
        let failNext = UnsafeTransfer(kernel)
        let loop = SyncLoop(node: node, kernel: kernel, source: source,
                            health: ProxyHealth(healthTimeout: .seconds(3600)),
                            settings: SyncSettings(minSyncPeriod: .zero, maximumRetryDelay: .milliseconds(200)))
        let task = Task { await loop.run() }
        defer { task.cancel() }
        await eventually("the first sync") { await loop.reports.count == 1 }
        failNext.value.failNext.store(true, ordering: .relaxed)
        source.set(service("b", 2))
        loop.changesArrived()
        await eventually("a failure and a retry that succeeds") {
            let failures = await loop.failureCount
            let reports = await loop.reports.count
            return failures == 1 && reports == 2
        }
        let retried = await loop.reports[1]
        XCTAssertEqual(retried.fullSyncReason, .previousApplyFailed)
        XCTAssertTrue(retried.sync.summaries.contains { $0.contains("service-ips") && $0.contains("198.18.0.2 . tcp . 80") },
                      "the retry did not carry service b: \(retried.sync.summaries)")
    }

    func testARequestedFullSyncReadsBack() async throws {
        let kernel = FakeKernel()
        let source = ManualSource()
        source.makeReady()
        source.set(service("a", 1))
        let loop = SyncLoop(node: node, kernel: kernel, source: source,
                            health: ProxyHealth(healthTimeout: .seconds(3600)),
                            settings: SyncSettings(minSyncPeriod: .zero))
        let task = Task { await loop.run() }
        defer { task.cancel() }
        await eventually("the first sync") { await loop.reports.count == 1 }
        loop.requestFullSync()
        await eventually("the full sync") { await loop.reports.count == 2 }
        let full = await loop.reports[1]
        XCTAssertEqual(full.fullSyncReason, .requested)
        XCTAssertTrue(full.sync.readBack)
    }

    func testNothingIsProgrammedUntilTheNodeIsKnownAndANewNodeSyncsInFull() async throws {
        let kernel = FakeKernel()
        let source = ManualSource()
        source.makeReady()
        source.set(service("a", 1))
        let loop = SyncLoop(node: nil, kernel: kernel, source: source, health: ProxyHealth(healthTimeout: .seconds(3600)),
                            settings: SyncSettings(minSyncPeriod: .zero))
        let task = Task { await loop.run() }
        defer { task.cancel() }
        loop.changesArrived()
        try await Task.sleep(for: .milliseconds(200))
        let none = await loop.reports.count
        XCTAssertEqual(none, 0, "programmed before the node's addresses were known")

        await loop.setNode(node)
        await eventually("the first sync") { await loop.reports.count == 1 }
        var moved = node
        moved.nodeIPs = [IPAddress("192.0.2.11")!]
        await loop.setNode(moved)
        await eventually("the sync for the new node") { await loop.reports.count == 2 }
        let second = await loop.reports[1]
        XCTAssertEqual(second.fullSyncReason, .requested, "a new node is synced in full, adopting the kernel's tables")
        XCTAssertTrue(second.sync.readBack)
        XCTAssertEqual(second.sync.elementsAdded, 0, "the new node's addresses change no element here")
    }
}
