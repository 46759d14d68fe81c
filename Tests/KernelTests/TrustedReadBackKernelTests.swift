import Foundation
@testable import Netlink
import Nftables
import ProxyCompiler
import ProxyEngine
import ServiceModel
import ServiceTestSupport
import XCTest

/// A new process adopting the kernel's tables (a daemon restart, a second `apply`): with the
/// generation stamp current it looks up only the frontends whose digest changed, and ends
/// exactly where a fresh apply ends; after anyone else's commit it reads everything.
final class TrustedReadBackKernelTests: XCTestCase {
    private var target: TestNamespace!
    private var reference: TestNamespace!

    override func setUpWithError() throws {
        guard geteuid() == 0 else { throw XCTSkip("requires root: kernel tests program private network namespaces") }
        target = try TestNamespace("trusted")
        reference = try TestNamespace("trusted-ref")
    }

    override func tearDown() {
        target?.remove()
        reference?.remove()
    }

    private let node = NodeConfig(nodeName: "node-1", nodeIPs: [IPAddress("192.0.2.10")!],
                                  clusterCIDRs: [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])

    /// A: 40 services of three endpoints and a NodePort each.
    private let a = GeneratedServiceMaps.threeEndpointServices(40)
    /// B: A with one endpoint of svc-007 moved, svc-040 added and svc-012 removed.
    private var b: ServiceMap {
        var services = GeneratedServiceMaps.threeEndpointServices(41, replacing: (service: 7, endpoint: "198.19.9.9")).services
        services.remove(at: 12)
        return ServiceMap(services: services)
    }

    /// Applies B as a new process would, and checks that the kernel then holds what a fresh
    /// apply of B gives in another namespace.
    private func applyBAsANewProcess(file: StaticString = #filePath, line: UInt = #line) throws -> (ApplyReport, requests: Int) {
        let kernel = try NetlinkKernel(networkNamespace: target.name)
        let report = try ServiceProxy(node: node, kernel: kernel).apply(b)
        try ServiceProxy(node: node, networkNamespace: reference.name).apply(b)
        XCTAssertEqual(try target.canonicalRuleset(), try reference.canonicalRuleset(),
                       "the kernel differs from a fresh apply of B", file: file, line: line)
        return (report, kernel.client.socket.elementLookupRequests)
    }

    func testANewProcessTrustsTheDigestsAndLooksUpOnlyWhatChanged() throws {
        try ServiceProxy(node: node, networkNamespace: target.name).apply(a)
        let (report, requests) = try applyBAsANewProcess()
        XCTAssertEqual(report.sync.trustedFrontends, 2 * 40 - 4, "every frontend of A but svc-007's and svc-012's")
        // svc-007 and svc-012: a ClusterIP and a NodePort each, three slots each.
        XCTAssertEqual(report.sync.keysLookedUp, 2 * 2 * 3)
        XCTAssertGreaterThan(requests, 0)
        XCTAssertGreaterThan(report.sync.operations, 0)

        // A third process: nothing to look up, nothing to commit.
        let kernel = try NetlinkKernel(networkNamespace: target.name)
        let again = try ServiceProxy(node: node, kernel: kernel).apply(b)
        XCTAssertEqual(again.sync.operations, 0, "\(again.sync.summaries)")
        XCTAssertEqual(again.sync.trustedFrontends, 2 * 40)
        XCTAssertEqual(again.sync.keysLookedUp, 0)
        XCTAssertEqual(kernel.client.socket.elementLookupRequests, 0)
    }

    /// `nft` deletes a backends element of svc-020 (which B does not change): the stamp is
    /// stale, everything is read, and the element is put back.
    func testAForeignChangeToOurTableIsReadInFullAndRepaired() throws {
        try ServiceProxy(node: node, networkNamespace: target.name).apply(a)
        try target.run(["nft", "delete", "element", "ip", "nftproxy", RulesetLayout.SetName.serviceBackends(3),
                        "{ 198.18.0.21 . tcp . 80 . 1 }"]).check()
        let (report, requests) = try applyBAsANewProcess()
        XCTAssertNil(report.sync.trustedFrontends)
        XCTAssertEqual(report.sync.keysLookedUp, 2 * 40 * 3, "every key A's verdict maps reach")
        XCTAssertGreaterThan(requests, 0)
        XCTAssertTrue(report.sync.summaries.contains { $0.hasPrefix("add element ip nftproxy service-backends-3") },
                      "\(report.sync.summaries)")
    }

    /// A commit that leaves our tables alone still moves the generation past the stamp: the
    /// read-back is complete (slower, and just as right).
    func testACommitElsewhereMakesTheReadBackComplete() throws {
        try ServiceProxy(node: node, networkNamespace: target.name).apply(a)
        try target.run(["nft", "add", "table", "ip", "someone-else"]).check()
        try reference.run(["nft", "add", "table", "ip", "someone-else"]).check()
        let (report, _) = try applyBAsANewProcess()
        XCTAssertNil(report.sync.trustedFrontends)
        XCTAssertEqual(report.sync.keysLookedUp, 2 * 40 * 3)
        XCTAssertEqual(try target.tables().sorted(), ["ip nftproxy", "ip someone-else", "ip6 nftproxy"])
    }
}
