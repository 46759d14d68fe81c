import Netlink
import Nftables
import ProxyCompiler
import ProxyEngine
import ProxyEngineTesting
import ServiceModel
import ServiceTestSupport
import XCTest

/// `ServiceProxy` against the in-memory kernel: which path each apply takes, what it commits,
/// and that the result is always what a full sync of the whole map leaves.
final class ServiceProxyTests: XCTestCase {
    private let node = EngineFixtures.node

    func testRandomChangesLeaveWhatAFullCompileWould() throws {
        let kernel = FakeKernel()
        let proxy = ServiceProxy(node: node, kernel: kernel)
        var random = RandomServices(seed: 7)
        var map = random.map(size: 16)
        XCTAssertEqual(try proxy.apply(map).path, .full(.firstApply))
        var committed = 0
        for step in 1...200 {
            map = random.mutate(map, size: 16)
            let report = try proxy.apply(map)
            XCTAssertEqual(report.path, .incremental, "step \(step)")
            committed += report.sync.operations
            try assertHoldsFullCompilation(kernel, of: map, "step \(step)")
        }
        XCTAssertGreaterThan(committed, 200, "the changes should have committed something")
    }

    func testNamedChangesLeaveWhatAFullCompileWould() throws {
        let kernel = FakeKernel()
        let proxy = ServiceProxy(node: node, kernel: kernel)
        var random = RandomServices(seed: 21)
        var map = random.map(size: 16)
        try proxy.apply(map)
        for step in 1...100 {
            let next = random.mutate(map, size: 16)
            let changed = changedNames(from: map, to: next)
            map = next
            XCTAssertTrue(try proxy.apply(map, changed: changed).incremental, "step \(step)")
            try assertHoldsFullCompilation(kernel, of: map, "step \(step)")
        }
    }

    /// A daemon builds the index for changes right after a full sync (`prepareForChanges`):
    /// the changes after it are incremental and leave what a full compile would, as without.
    func testChangesAfterThePreparedIndexLeaveWhatAFullCompileWould() throws {
        let kernel = FakeKernel()
        let proxy = ServiceProxy(node: node, kernel: kernel)
        var random = RandomServices(seed: 33)
        var map = random.map(size: 16)
        XCTAssertFalse(try proxy.apply(map).incremental)
        proxy.prepareForChanges()
        proxy.prepareForChanges()  // a second call changes nothing
        for step in 1...50 {
            let next = random.mutate(map, size: 16)
            let changed = changedNames(from: map, to: next)
            map = next
            XCTAssertTrue(try proxy.apply(map, changed: changed).incremental, "step \(step)")
            try assertHoldsFullCompilation(kernel, of: map, "step \(step)")
        }
    }

    func testOneEndpointChangeCommitsOnlyThatServicesElements() throws {
        let kernel = FakeKernel()
        let proxy = ServiceProxy(node: node, kernel: kernel)
        var random = RandomServices(seed: 11)
        let services = (0..<50).map { index -> Service in
            Service(name: ServiceName(namespace: "ns", name: String(format: "svc-%02d", index)),
                    clusterIPs: [IPAddress("198.18.1.\(index + 1)")!],
                    ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: UInt16(30000 + index),
                                        endpoints: (0..<3).map { _ in random.endpoint(nodes: ["node-2"]) })])
        }
        try proxy.apply(ServiceMap(services: services))
        var changed = services
        changed[17].ports[0].endpoints.append(Endpoint(address: IPAddress("198.19.9.9")!, port: 8080, nodeName: "node-2"))

        let report = try proxy.apply(ServiceMap(services: changed))
        XCTAssertEqual(report.path, .incremental)
        XCTAssertEqual(report.changedServices, [changed[17].name])
        XCTAssertEqual(kernel.commits.last, report.sync.transaction, "the report names what was committed")
        // Every element operation is about svc-17's ClusterIP or NodePort.
        for operation in report.sync.transaction.operations {
            let elements: ArraySlice<SetElement>
            switch operation {
            case .addElements(_, _, let set, let list), .deleteElements(_, _, let set, let list):
                // The commit also moves the tables' generation stamps.
                if set.name == GenerationStamp.setName { continue }
                elements = list
            default: continue
            }
            for element in elements {
                XCTAssertTrue(element.key.contains(.address(IPAddress("198.18.1.18")!)) || element.key.contains(.port(30017)),
                              "touches another service: \(operation.summary)")
            }
        }
        // From 3 to 4 endpoints: its two dispatch elements move to the 4-buckets, which are
        // created, and its two digest elements are replaced; its endpoints are on node-2, so
        // none is a hairpin candidate. No endpoint left, so no counting element is retired:
        // the three keep their counts.
        XCTAssertEqual(report.sync.elementsRemoved, 2 + 2 + 3 + 3, "\(report.sync.summaries)")
        XCTAssertEqual(report.sync.elementsAdded, 2 + 2 + 4 + 4, "\(report.sync.summaries)")
        XCTAssertEqual(report.sync.elementsRetired, 0, "\(report.sync.summaries)")
        XCTAssertTrue(report.sync.transaction.operations.contains(.addChain(.ip, table: RulesetLayout.tableName,
                                                                            Chain(name: "service-lb-4"))))
        try assertHoldsFullCompilation(kernel, of: ServiceMap(services: changed), "after the change")

        // Nothing changed: nothing committed, still incremental.
        let commits = kernel.commits.count
        let again = try proxy.apply(ServiceMap(services: changed))
        XCTAssertEqual(again.path, .incremental)
        XCTAssertEqual(again.sync.operations, 0)
        XCTAssertEqual(kernel.commits.count, commits)
    }

    func testAForeignCommitMakesTheNextApplyAFullRepairingSync() throws {
        let kernel = FakeKernel()
        let proxy = ServiceProxy(node: node, kernel: kernel)
        var random = RandomServices(seed: 3)
        var map = random.map(size: 10)
        try proxy.apply(map)
        // Someone else empties our dispatch map (as `nft flush map` would).
        let serviceIPs = try XCTUnwrap(kernel.tables.table(.ip, RulesetLayout.tableName)?.sets
            .first { $0.name == RulesetLayout.SetName.serviceIPs })
        var flush = Transaction()
        flush.deleteElements(serviceIPs.elements, from: serviceIPs, family: .ip, table: RulesetLayout.tableName)
        try kernel.foreignCommit(flush)

        let repaired = try proxy.apply(map)
        XCTAssertEqual(repaired.path, .full(.generationMoved))
        XCTAssertTrue(repaired.sync.readBack)
        XCTAssertEqual(repaired.sync.elementsAdded, serviceIPs.elements.count, "\(repaired.sync.summaries)")
        try assertHoldsFullCompilation(kernel, of: map, "after the repair")

        map = random.mutate(map, size: 10)
        XCTAssertEqual(try proxy.apply(map).path, .incremental)
        try assertHoldsFullCompilation(kernel, of: map, "after the next change")
    }

    func testAWriterBetweenCheckAndCommitMakesTheApplyFallBackToAFullSync() throws {
        let kernel = FakeKernel()
        let proxy = ServiceProxy(node: node, kernel: kernel)
        try proxy.apply(EngineFixtures.threeEndpointServices(3))
        kernel.beforeNextCommit { kernel in
            var other = Transaction()
            other.append(.deleteElements(.ip, table: RulesetLayout.tableName,
                                         set: NamedSet(name: RulesetLayout.SetName.clusterIPs, key: .types([.ipv4Address])),
                                         [SetElement(key: [.address(IPAddress("198.18.0.1")!)])]))
            try kernel.foreignCommit(other)
        }
        let map = EngineFixtures.threeEndpointServices(4)
        let report = try proxy.apply(map)
        XCTAssertEqual(report.path, .full(.commitOvertaken))
        XCTAssertTrue(report.sync.readBack)
        XCTAssertTrue(report.sync.summaries.contains { $0.hasPrefix("add element ip nftproxy cluster-ips") },
                      "the full sync restores what the other writer removed: \(report.sync.summaries)")
        try assertHoldsFullCompilation(kernel, of: map, "after the fallback")
    }

    func testASetThatOutgrowsItsSizeIsRecreatedByAFullSync() throws {
        let kernel = FakeKernel()
        let proxy = ServiceProxy(node: node, kernel: kernel)
        func declaredSize(_ set: String) -> Int? {
            kernel.tables.table(.ip, RulesetLayout.tableName)?.sets.first { $0.name == set }?.size
        }
        try proxy.apply(EngineFixtures.manyServices(1000))
        XCTAssertEqual(declaredSize("service-ips"), 2048)

        // Within the size: incremental, and the set keeps its size.
        XCTAssertEqual(try proxy.apply(EngineFixtures.manyServices(1200)).path, .incremental)
        XCTAssertEqual(declaredSize("service-ips"), 2048)

        // 2,100 elements do not fit into 2,048 (the kernel would refuse with ENFILE): the
        // proxy syncs in full, which re-creates the table with larger sets in one transaction.
        let beyond = try proxy.apply(EngineFixtures.manyServices(2100))
        guard case .full(.setOverflow(.ip, let set)) = beyond.path else { return XCTFail("\(beyond.path)") }
        XCTAssertEqual(declaredSize(set).map { $0 > 2100 }, true, "\(set)")
        XCTAssertTrue(beyond.sync.summaries.contains("delete table ip nftproxy"), "\(beyond.sync.summaries.prefix(4))")
        XCTAssertEqual(declaredSize("service-ips"), 8192)
        try assertHoldsFullCompilation(kernel, of: EngineFixtures.manyServices(2100), "after growing")

        // And the next change is incremental again.
        XCTAssertEqual(try proxy.apply(EngineFixtures.manyServices(2101)).path, .incremental)
        try assertHoldsFullCompilation(kernel, of: EngineFixtures.manyServices(2101), "after the next change")
    }

    func testARefusedCommitIsThrownAndTheNextApplySyncsInFull() throws {
        let kernel = FakeKernel()
        let proxy = ServiceProxy(node: node, kernel: kernel)
        let observer = RecordingObserver()
        proxy.observer = observer
        try proxy.apply(EngineFixtures.threeEndpointServices(3))
        let before = kernel.tables

        kernel.failNextCommit(with: .rejected(operation: "add element ip nftproxy service-ips", errno: ENOMEM, kernelMessage: nil))
        let map = EngineFixtures.threeEndpointServices(5)
        XCTAssertThrowsError(try proxy.apply(map)) { error in
            guard let error = error as? ApplyError, case .rejected(_, let errno, _) = error.error else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(errno, ENOMEM)
        }
        XCTAssertEqual(kernel.tables, before)
        XCTAssertEqual(observer.failures, 1)

        let next = try proxy.apply(map)
        XCTAssertEqual(next.path, .full(.previousApplyFailed))
        XCTAssertTrue(next.sync.readBack)
        try assertHoldsFullCompilation(kernel, of: map, "after the retry")
        XCTAssertEqual(observer.reports.map(\.path), [.full(.firstApply), .full(.previousApplyFailed)])
    }

    func testInvalidateMakesTheNextApplyReadBackAndFindNothingToDo() throws {
        let kernel = FakeKernel()
        let proxy = ServiceProxy(node: node, kernel: kernel)
        let map = EngineFixtures.threeEndpointServices(5)
        try proxy.apply(map)
        proxy.invalidate()
        let reads = kernel.tablesRead
        let report = try proxy.apply(map)
        XCTAssertEqual(report.path, .full(.requested))
        XCTAssertTrue(report.sync.readBack)
        XCTAssertEqual(kernel.tablesRead, reads + 2, "both tables read back")
        XCTAssertEqual(report.sync.operations, 0)
        XCTAssertEqual(try proxy.apply(map).path, .incremental)
    }
}

/// Keeps what a `ServiceProxy` told it.
final class RecordingObserver: ServiceProxyObserver {
    var reports: [ApplyReport] = []
    var failures = 0

    func serviceProxy(_ proxy: ServiceProxy, didApply report: ApplyReport) { reports.append(report) }
    func serviceProxy(_ proxy: ServiceProxy, didFail error: ApplyError, after duration: Duration) { failures += 1 }
}

/// The names of the services that differ between two maps (added, removed or changed).
private func changedNames(from old: ServiceMap, to new: ServiceMap) -> Set<ServiceName> {
    let names = Set(old.services.map(\.name) + new.services.map(\.name))
    return names.filter { name in old.services.first { $0.name == name } != new.services.first { $0.name == name } }
}
