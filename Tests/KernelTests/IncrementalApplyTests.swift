import Foundation
import Nftables
import ProxyCompiler
import ServiceModel
import ServiceTestSupport
import XCTest

/// `ServiceProxy` compiles and commits only the services that changed, and what it leaves in
/// the kernel is what a full sync of the whole map would leave.
final class IncrementalApplyTests: XCTestCase {
    private var target: TestNamespace!

    override func setUpWithError() throws {
        guard geteuid() == 0 else { throw XCTSkip("requires root: kernel tests program private network namespaces") }
        target = try TestNamespace("incremental")
    }

    override func tearDown() { target?.remove() }

    private let node = NodeConfig(nodeName: "node-1", nodeIPs: [IPAddress("192.0.2.10")!],
                                  clusterCIDRs: [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])

    /// Whether a fresh engine (a new process) finds the kernel already equal to a full compile of `map`.
    private func assertKernelHoldsFullCompilation(of map: ServiceMap, _ message: String,
                                                  file: StaticString = #filePath, line: UInt = #line) throws {
        let fresh = RulesetSync(client: try NftablesClient(networkNamespace: target.name))
        let report = try fresh.sync(to: Compiler(node: node).compile(map).ruleset)
        XCTAssertEqual(report.operations, 0, "\(message): the kernel differs from a full sync: \(report.summaries)",
                       file: file, line: line)
    }

    func testRandomChangesLeaveWhatAFullSyncWould() throws {
        let proxy = try ServiceProxy(node: node, networkNamespace: target.name)
        var random = RandomServices(seed: 7)
        var map = random.map(size: 16)
        XCTAssertFalse(try proxy.apply(map).incremental)
        var committed = 0
        for step in 1...60 {
            map = random.mutate(map, size: 16)
            let report = try proxy.apply(map)
            XCTAssertTrue(report.incremental, "step \(step)")
            committed += report.sync.operations
            // Checking costs a read-back: every few steps, and at the end.
            if step % 6 == 0 { try assertKernelHoldsFullCompilation(of: map, "step \(step)") }
        }
        XCTAssertGreaterThan(committed, 60, "the changes should have committed something")
    }

    func testOneEndpointChangeCommitsOnlyThatServicesElements() throws {
        let proxy = try ServiceProxy(node: node, networkNamespace: target.name)
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
        XCTAssertTrue(report.incremental)
        XCTAssertEqual(report.changedServices, [changed[17].name])
        // From 3 to 4 endpoints: its two dispatch elements move to the 4-buckets, which are created.
        let summaries = report.sync.summaries
        for summary in summaries where summary.contains("element") {
            XCTAssertTrue(summary.contains("198.18.1.18") || summary.contains("30017"), "touches another service: \(summary)")
        }
        // Exactly its elements: 2 dispatch elements and the backends of both frontends (its
        // endpoints are on node-2, so none is a hairpin candidate).
        XCTAssertEqual(report.sync.elementsRemoved, 2 + 3 + 3, "\(summaries)")
        XCTAssertEqual(report.sync.elementsAdded, 2 + 4 + 4, "\(summaries)")
        XCTAssertTrue(summaries.contains("add chain ip nftproxy service-lb-4"), "\(summaries)")
        try assertKernelHoldsFullCompilation(of: ServiceMap(services: changed), "after the change")

        // Nothing changed: nothing committed, still incremental.
        let again = try proxy.apply(ServiceMap(services: changed))
        XCTAssertTrue(again.incremental)
        XCTAssertEqual(again.sync.operations, 0)
    }

    func testAForeignChangeMakesTheNextApplyAFullRepairingSync() throws {
        let proxy = try ServiceProxy(node: node, networkNamespace: target.name)
        var random = RandomServices(seed: 3)
        var map = random.map(size: 10)
        try proxy.apply(map)
        let expected = try target.canonicalRuleset()
        try target.run(["nft", "flush", "map", "ip", "nftproxy", "service-ips"]).check()

        let repaired = try proxy.apply(map)
        XCTAssertFalse(repaired.incremental)
        XCTAssertTrue(repaired.sync.readBack)
        XCTAssertEqual(try target.canonicalRuleset(), expected)

        map = random.mutate(map, size: 10)
        XCTAssertTrue(try proxy.apply(map).incremental)
        try assertKernelHoldsFullCompilation(of: map, "after the repair")
    }
}

extension IncrementalApplyTests {
    /// `count` services, one TCP port each, with one endpoint on another node.
    private func manyServices(_ count: Int) -> ServiceMap {
        ServiceMap(services: (0..<count).map { index in
            Service(name: ServiceName(namespace: "ns", name: String(format: "svc-%05d", index)),
                    clusterIPs: [IPAddress("198.18.\(index / 250).\(index % 250 + 1)")!],
                    ports: [ServicePort(name: "http", transport: .tcp, port: 80,
                                        endpoints: [Endpoint(address: IPAddress("198.19.\(index / 250).\(index % 250 + 1)")!,
                                                             port: 8080, nodeName: "node-2")])])
        })
    }

    private func declaredSize(_ map: String) throws -> Int? {
        let listing = try target.run(["nft", "-j", "list", "map", "ip", "nftproxy", map]).check().stdout
        let json = try JSONSerialization.jsonObject(with: Data(listing.utf8)) as? [String: Any]
        let items = json?["nftables"] as? [[String: Any]] ?? []
        return items.compactMap { ($0["set"] ?? $0["map"]) as? [String: Any] }.first?["size"] as? Int
    }

    func testASetThatOutgrowsItsSizeIsRecreatedByAFullSync() throws {
        let proxy = try ServiceProxy(node: node, networkNamespace: target.name)
        try proxy.apply(manyServices(1000))
        XCTAssertEqual(try declaredSize("service-ips"), 2048)

        // Within the size: incremental, and the kernel keeps the size.
        let within = try proxy.apply(manyServices(1200))
        XCTAssertTrue(within.incremental)
        XCTAssertEqual(try declaredSize("service-ips"), 2048)

        // 2,100 elements do not fit into 2,048: the proxy syncs in full, which re-creates the
        // table with larger sets in the same transaction.
        let beyond = try proxy.apply(manyServices(2100))
        XCTAssertFalse(beyond.incremental)
        XCTAssertTrue(beyond.sync.summaries.contains("delete table ip nftproxy"), "\(beyond.sync.summaries.prefix(4))")
        XCTAssertEqual(try declaredSize("service-ips"), 8192)
        try assertKernelHoldsFullCompilation(of: manyServices(2100), "after growing")

        // And the next change is incremental again.
        XCTAssertTrue(try proxy.apply(manyServices(2101)).incremental)
        try assertKernelHoldsFullCompilation(of: manyServices(2101), "after the next change")
    }
}
