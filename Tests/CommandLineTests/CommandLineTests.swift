import Foundation
import Sandbox
import XCTest

/// The `nftproxy` command line as a user runs it: inputs, node options, exit statuses.
/// `dump` needs no privileges, so these run without root too.
final class CommandLineTests: XCTestCase {
    private let runner = CommandRunner()

    private func nftproxy(_ arguments: [String], input: String? = nil) throws -> CommandResult {
        try runner.run([try BuiltProducts.path(of: "nftproxy")] + arguments, input: input)
    }

    private var example: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/echo-server.yaml").path
    }

    func testDumpReadsStdinAndNotesSkippedKinds() throws {
        let yaml = try String(contentsOfFile: example, encoding: .utf8)
        let result = try nftproxy(["dump", "-f", "-"], input: yaml)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("198.18.0.10 . tcp . 80 comment \"default/echo-server http\" : goto service-lb-3"), result.stdout)
        XCTAssertTrue(result.stderr.contains("<stdin>: skipping apps/v1 Deployment default/echo-server"), result.stderr)
    }

    func testServiceProxyNameSelectsLabelledServicesForDumpApplyAndPlan() throws {
        let yaml = try String(contentsOfFile: example, encoding: .utf8)
        let skipped = try nftproxy(["dump", "-f", "-", "--service-proxy-name", "nftproxy"], input: yaml)
        XCTAssertEqual(skipped.status, 0, skipped.stderr)
        XCTAssertFalse(skipped.stdout.contains("198.18.0.10 . tcp . 80"), skipped.stdout)
        XCTAssertTrue(skipped.stderr.contains("no label service.kubernetes.io/service-proxy-name=nftproxy"), skipped.stderr)

        let labelled = yaml.replacingOccurrences(
            of: "  labels:\n    app: echo-server\nspec:\n  type: NodePort",
            with: "  labels:\n    app: echo-server\n    service.kubernetes.io/service-proxy-name: nftproxy\nspec:\n  type: NodePort")
        XCTAssertNotEqual(labelled, yaml, "the example's Service metadata changed shape: the label was not added")
        let ours = try nftproxy(["dump", "-f", "-", "--service-proxy-name", "nftproxy"], input: labelled)
        XCTAssertEqual(ours.status, 0, ours.stderr)
        XCTAssertTrue(ours.stdout.contains("198.18.0.10 . tcp . 80 comment \"default/echo-server http\" : goto service-lb-3"), ours.stdout)
        for command in ["apply", "plan"] {
            let help = try nftproxy([command, "--help"])
            XCTAssertTrue(help.stdout.contains("--service-proxy-name"), "\(command) --help: \(help.stdout)")
        }
    }

    func testNodePortAddressesPrimaryUsesTheNodeIPs() throws {
        let result = try nftproxy(["dump", "-f", example, "--node-ip", "192.0.2.10", "--node-ip", "2001:db8:0:2::10",
                                   "--nodeport-addresses", "primary"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("fib daddr type local ip daddr 192.0.2.10 meta l4proto . th dport vmap @service-nodeports"))
        XCTAssertTrue(result.stdout.contains("fib daddr type local ip6 daddr 2001:db8:0:2::10 meta l4proto . th dport vmap @service-nodeports"))

        let withoutNodeIP = try nftproxy(["dump", "-f", example, "--nodeport-addresses", "primary"])
        XCTAssertNotEqual(withoutNodeIP.status, 0)
        XCTAssertTrue(withoutNodeIP.stderr.contains("--node-ip"), withoutNodeIP.stderr)
    }

    func testEndpointCountersAreOnUnlessTurnedOff() throws {
        let on = try nftproxy(["dump", "-f", example])
        XCTAssertEqual(on.status, 0, on.stderr)
        XCTAssertEqual(on.stdout.components(separatedBy: "\t\tcounter\n").count - 1, 2 * 4 * 16,
                       "the counting sets of each table, four kinds in 16 shards: \(on.stdout)")
        XCTAssertTrue(on.stdout.contains("comment \"default/echo-server"), "dispatch elements name their service: \(on.stdout)")
        XCTAssertTrue(on.stdout.contains("ct status dnat jump count-endpoint-traffic"), on.stdout)
        let off = try nftproxy(["dump", "-f", example, "--endpoint-counters=false"])
        XCTAssertEqual(off.status, 0, off.stderr)
        XCTAssertFalse(off.stdout.contains("counter"), off.stdout)
        let bad = try nftproxy(["dump", "-f", example, "--endpoint-counters=maybe"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--endpoint-counters"), bad.stderr)
        let output = try nftproxy(["stats", "-o", "yaml"])
        XCTAssertNotEqual(output.status, 0)
        XCTAssertTrue(output.stderr.contains("yaml is neither table nor json"), output.stderr)
        let service = try nftproxy(["stats", "--service", "web"])
        XCTAssertNotEqual(service.status, 0)
        XCTAssertTrue(service.stderr.contains("--service: web is not namespace/name"), service.stderr)
    }

    func testBadInputsExitWithStatusOneNamingTheProblem() throws {
        let missing = try nftproxy(["dump", "-f", "/nonexistent/objects.yaml"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("/nonexistent/objects.yaml: cannot read the file"), missing.stderr)

        let port = try nftproxy(["dump", "-f", "-"], input: """
            apiVersion: v1
            kind: Service
            metadata: {name: web, namespace: shop}
            spec: {clusterIP: 198.18.0.20, ports: [{port: 70000}]}
            """)
        XCTAssertEqual(port.status, 1)
        XCTAssertTrue(port.stderr.contains("Service shop/web: spec.ports[0].port"), port.stderr)
        XCTAssertEqual(port.stdout, "", "nothing is printed for bad input")

        let cidr = try nftproxy(["dump", "-f", example, "--cluster-cidr", "198.19.0.0/33"])
        XCTAssertNotEqual(cidr.status, 0)
        XCTAssertTrue(cidr.stderr.contains("--cluster-cidr: 198.19.0.0/33 is not a CIDR"), cidr.stderr)
    }

    /// The decoder and the compiler decide a conflict by one rule; `dump` prints it once.
    func testAFrontendConflictIsPrintedOnce() throws {
        let result = try nftproxy(["dump", "-f", "-"], input: """
            apiVersion: v1
            kind: Service
            metadata: {name: b}
            spec: {type: NodePort, clusterIP: 198.18.0.2, ports: [{port: 80, nodePort: 30080}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: a, namespace: zzz}
            spec: {type: NodePort, clusterIP: 198.18.0.1, ports: [{port: 81, nodePort: 30080}]}
            """)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr, "warning: NodePort tcp/30080 is claimed by both default/b and zzz/a; default/b keeps it\n")
    }
}
