import Foundation
import Sandbox
import XCTest

/// `nftproxy plan` as a user runs it: it lists exactly the operations the following
/// `nftproxy apply` commits (`apply -v` lists them), commits nothing itself, and
/// `--detailed-exitcode` says 0 for no change, 2 for a change, 1 for an error.
final class PlanCommandTests: XCTestCase {
    private let runner = CommandRunner()
    private let options = ["--node-name", "node-1", "--node-ip", "192.0.2.10", "--cluster-cidr", "198.19.0.0/16"]

    private func nftproxy(_ arguments: [String]) throws -> CommandResult {
        try runner.run([try BuiltProducts.path(of: "nftproxy")] + arguments, timeout: .seconds(60))
    }

    private var example: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/echo-server.yaml").path
    }

    /// The operation lines of `plan` (after its "Kernel operations" heading) or of `apply -v`.
    private func operations(_ output: String) -> [String] {
        output.split(separator: "\n").map(String.init).filter { $0.hasPrefix("  add ") || $0.hasPrefix("  delete ")
            || $0.hasPrefix("  flush ") }
    }

    func testPlanListsWhatApplyThenCommits() throws {
        try netlinkRequireRoot()
        let namespace = try NetlinkTestNamespace()
        defer { namespace.remove() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("plan-\(namespace.name)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let original = try String(contentsOfFile: example, encoding: .utf8)
        let moved = directory.appendingPathComponent("moved.yaml").path
        try original.replacingOccurrences(of: "198.19.1.13", with: "198.19.1.14")
            .write(toFile: moved, atomically: true, encoding: .utf8)
        let netns = ["--netns", namespace.name]

        for (step, file) in [example, moved, example].enumerated() {
            let plan = try nftproxy(["plan", "-f", file, "--detailed-exitcode"] + options + netns)
            XCTAssertEqual(plan.status, 2, "step \(step): \(plan.stdout)\n\(plan.stderr)")
            let before = try namespace.nft("list", "ruleset")
            let planned = operations(plan.stdout)
            XCTAssertFalse(planned.isEmpty, plan.stdout)
            XCTAssertEqual(try namespace.nft("list", "ruleset"), before, "step \(step): plan changed the kernel")

            let apply = try nftproxy(["apply", "-v", "-f", file] + options + netns)
            XCTAssertEqual(apply.status, 0, apply.stderr)
            XCTAssertEqual(operations(apply.stdout), planned, "step \(step)")

            let again = try nftproxy(["plan", "-f", file, "--detailed-exitcode"] + options + netns)
            XCTAssertEqual(again.status, 0, again.stdout)
            XCTAssertTrue(again.stdout.contains("No changes"), again.stdout)
        }
        // The moved endpoint, per Service.
        let plan = try nftproxy(["plan", "-f", moved] + options + netns)
        XCTAssertTrue(plan.stdout.contains("Service default/echo-server:\n  ~ ClusterIP 198.18.0.10:80/tcp (port http): "
                                           + "+ 198.19.1.14:8080, - 198.19.1.13:8080"), plan.stdout)

        let bad = try nftproxy(["plan", "-f", "/nonexistent.yaml", "--detailed-exitcode"] + options + netns)
        XCTAssertEqual(bad.status, 1, bad.stderr)
    }

    /// A NodePort service turning externalTrafficPolicy Local on a node that runs none of its
    /// endpoints (the example's endpoints run on node-1; this is node-2): the plan says where
    /// pods' traffic and where external traffic goes.
    func testPlanDescribesLocalPolicies() throws {
        try netlinkRequireRoot()
        let namespace = try NetlinkTestNamespace()
        defer { namespace.remove() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("plan-local-\(namespace.name)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let local = directory.appendingPathComponent("local.yaml").path
        let original = try String(contentsOfFile: example, encoding: .utf8)
        let changed = original.replacingOccurrences(of: "externalTrafficPolicy: Cluster", with: "externalTrafficPolicy: Local")
        XCTAssertNotEqual(changed, original, "the example has no externalTrafficPolicy to change")
        try changed.write(toFile: local, atomically: true, encoding: .utf8)
        let node2 = ["--node-name", "node-2", "--node-ip", "192.0.2.20", "--cluster-cidr", "198.19.0.0/16",
                     "--netns", namespace.name]
        XCTAssertEqual(try nftproxy(["apply", "-f", example] + node2).status, 0)
        let plan = try nftproxy(["plan", "-f", local] + node2)
        XCTAssertTrue(plan.stdout.contains("  ~ NodePort 32000/tcp (IPv4) (port http) -> 198.19.1.11:8080, 198.19.1.12:8080, "
                                           + "198.19.1.13:8080; external traffic -> dropped (none on this node)"), plan.stdout)
    }
}
