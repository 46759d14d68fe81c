import Foundation
import Nftables
import ProxyCompiler
import ProxyEngine
import ServiceModel
import ServiceTestSupport
import XCTest

/// `ServiceProxy` in a kernel: a commit by another process (`nft`) moves the generation it
/// checks, and sets keep the size the kernel gave them until a full sync re-creates them.
/// (Its incremental path, fallbacks and retries are tested against the in-memory kernel in
/// ProxyEngineTests, and `FakeKernelConformanceTests` checks that kernel against this one.)
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
        let fresh = RulesetSync(kernel: try NetlinkKernel(networkNamespace: target.name))
        let report = try fresh.sync(to: Compiler(node: node).compile(map).ruleset)
        XCTAssertEqual(report.operations, 0, "\(message): the kernel differs from a full sync: \(report.summaries)",
                       file: file, line: line)
    }

    func testAForeignChangeMakesTheNextApplyAFullRepairingSync() throws {
        let proxy = try ServiceProxy(node: node, networkNamespace: target.name)
        var map = manyServices(10)
        try proxy.apply(map)
        let expected = try target.canonicalRuleset()
        try target.run(["nft", "flush", "map", "ip", "nftproxy", "service-ips"]).check()

        let repaired = try proxy.apply(map)
        XCTAssertEqual(repaired.path, .full(.generationMoved))
        XCTAssertTrue(repaired.sync.readBack)
        XCTAssertEqual(try target.canonicalRuleset(), expected)

        map = manyServices(11)
        XCTAssertTrue(try proxy.apply(map).incremental)
        try assertKernelHoldsFullCompilation(of: map, "after the repair")
    }
}

extension IncrementalApplyTests {
    /// `count` services, one TCP port each, with one endpoint on another node.
    private func manyServices(_ count: Int) -> ServiceMap { GeneratedServiceMaps.manyServices(count) }

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
        XCTAssertEqual(beyond.fullSyncReason.map { if case .setOverflow = $0 { true } else { false } }, true,
                       "\(beyond.path)")
        XCTAssertTrue(beyond.sync.summaries.contains("delete table ip nftproxy"), "\(beyond.sync.summaries.prefix(4))")
        XCTAssertEqual(try declaredSize("service-ips"), 8192)
        try assertKernelHoldsFullCompilation(of: manyServices(2100), "after growing")

        // And the next change is incremental again.
        XCTAssertTrue(try proxy.apply(manyServices(2101)).incremental)
        try assertKernelHoldsFullCompilation(of: manyServices(2101), "after the next change")
    }
}
