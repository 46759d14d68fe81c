import Foundation
import Sandbox
import XCTest

/// `nftproxy apply` / `cleanup` against private network namespaces, compared with what
/// `nft -f` of our own dump produces in a second fresh namespace.
final class ApplyTests: XCTestCase {
    private var namespaces: [TestNamespace] = []
    private let runner = CommandRunner()
    private var scratch: URL!

    override func setUpWithError() throws {
        guard geteuid() == 0 else { throw XCTSkip("requires root: kernel tests program private network namespaces") }
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("nftproxy-kt-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() {
        namespaces.forEach { $0.remove() }
        namespaces = []
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
    }

    private func namespace(_ purpose: String) throws -> TestNamespace {
        let namespace = try TestNamespace(purpose)
        namespaces.append(namespace)
        return namespace
    }

    private func nftproxy(_ arguments: [String]) throws -> CommandResult {
        try runner.run([try BuiltProducts.path(of: "nftproxy")] + arguments)
    }

    private func write(_ text: String, _ name: String) throws -> String {
        let path = scratch.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private let nodeOptions = ["--node-name", "node-1", "--cluster-cidr", "198.19.0.0/16",
                               "--cluster-cidr", "2001:db8:1::/48"]

    /// Applies `objects` to `target` and checks the kernel holds exactly what `nft -f` of the dump gives.
    private func applyAndCompare(_ objects: String, target: TestNamespace, label: String) throws {
        let input = try write(objects, "\(label).yaml")
        let applied = try nftproxy(["apply", "-f", input, "--netns", target.name] + nodeOptions)
        XCTAssertTrue(applied.succeeded, "apply failed: \(applied)")

        let dump = try nftproxy(["dump", "-f", input] + nodeOptions).check().stdout
        let reference = try namespace("ref-\(label)")
        let loaded = try reference.run(["nft", "-f", try write(dump, "\(label).nft")])
        XCTAssertTrue(loaded.succeeded, "nft -f of our dump failed: \(loaded)")

        XCTAssertEqual(try target.canonicalRuleset(), try reference.canonicalRuleset(),
                       "\(label): kernel state after apply differs from nft -f of the dump")
        XCTAssertEqual(try target.canonicalBytecode(), try reference.canonicalBytecode(),
                       "\(label): bytecode after apply differs from nft -f of the dump")
    }

    func testApplyMatchesNftOfOurDumpAndReplacesOnSecondApply() throws {
        let target = try namespace("apply")
        try applyAndCompare(Manifests.first, target: target, label: "first")
        try applyAndCompare(Manifests.second, target: target, label: "second")
    }

    func testTrafficPoliciesLocalApplyAsNftLoadsThemAndBack() throws {
        let target = try namespace("policies")
        try applyAndCompare(Manifests.first, target: target, label: "first")
        try applyAndCompare(Manifests.trafficPolicies, target: target, label: "policies")
        try applyAndCompare(Manifests.second, target: target, label: "second")
    }

    func testSessionAffinityAppliesAsNftLoadsItAndKeepsRememberedClients() throws {
        XCTAssertGreaterThanOrEqual(Manifests.sessionAffinity.components(separatedBy: "sessionAffinity: ClientIP").count, 4,
                                    "the manifest should give three services or more affinity")
        let target = try namespace("affinity")
        try applyAndCompare(Manifests.first, target: target, label: "first")
        try applyAndCompare(Manifests.sessionAffinity, target: target, label: "affinity")
        // Clients the packet path remembered (added here as a rule's `update` would).
        let remembered = try target.run(["nft", "add element ip nftproxy affinity { 192.0.2.7 . 198.18.0.20 . tcp . 443 "
                                         + "timeout 10m : 198.19.1.31 . 8443 }; add element ip nftproxy nodeport-affinity "
                                         + "{ 192.0.2.7 . tcp . 32000 timeout 3h : 198.19.1.11 . 8080 }"])
        XCTAssertTrue(remembered.succeeded, "\(remembered)")
        // The same objects again: nothing to change, the remembered clients stay.
        let again = try nftproxy(["apply", "-f", try write(Manifests.sessionAffinity, "again.yaml"), "--netns", target.name]
                                 + nodeOptions)
        XCTAssertTrue(again.succeeded, "\(again)")
        let maps = try target.run(["nft", "list", "map", "ip", "nftproxy", "affinity"]).stdout
            + (try target.run(["nft", "list", "map", "ip", "nftproxy", "nodeport-affinity"]).stdout)
        XCTAssertTrue(maps.contains("192.0.2.7 . 198.18.0.20 . tcp . 443"), maps)
        XCTAssertTrue(maps.contains("192.0.2.7 . tcp . 32000"), maps)
        // Affinity gone from every service: its maps and chains go.
        try applyAndCompare(Manifests.trafficPolicies, target: target, label: "policies")
    }

    func testCleanupRemovesOnlyOurTablesAndIsRepeatable() throws {
        let target = try namespace("cleanup")
        try target.run(["nft", "add", "table", "inet", "someone-else"]).check()
        let input = try write(Manifests.first, "objects.yaml")
        _ = try nftproxy(["apply", "-f", input, "--netns", target.name] + nodeOptions).check()
        XCTAssertEqual(Set(try target.tables()), ["inet someone-else", "ip nftproxy", "ip6 nftproxy"])

        _ = try nftproxy(["cleanup", "--netns", target.name]).check()
        XCTAssertEqual(try target.tables(), ["inet someone-else"])
        _ = try nftproxy(["cleanup", "--netns", target.name]).check()
        XCTAssertEqual(try target.tables(), ["inet someone-else"])
    }

    func testBadInputFailsWithoutTouchingTheKernel() throws {
        let target = try namespace("badinput")
        _ = try nftproxy(["apply", "-f", try write(Manifests.first, "good.yaml"), "--netns", target.name] + nodeOptions).check()
        let before = try target.canonicalRuleset()

        let bad = Manifests.first.replacingOccurrences(of: "198.19.1.12", with: "198.19.1.312")
        let result = try nftproxy(["apply", "-f", try write(bad, "bad.yaml"), "--netns", target.name] + nodeOptions)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("EndpointSlice default/echo-server-abc12"), result.stderr)
        XCTAssertTrue(result.stderr.contains("198.19.1.312"), result.stderr)
        XCTAssertEqual(try target.canonicalRuleset(), before)
    }
}
