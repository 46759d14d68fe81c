import Foundation
import KubeAPIStandIn
import XCTest

/// kubectl, a real client, lists and watches through the stand-in.
final class KubectlFidelityTests: XCTestCase {
    private var fixture: StandInFixture!

    override func setUp() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/kubectl") else {
            throw XCTSkip("kubectl is not installed")
        }
        fixture = try await StandInFixture()
    }

    override func tearDown() async throws {
        await fixture?.shutdown()
    }

    private func kubectl(_ arguments: [String], kubeconfig: String? = nil) throws -> ChildProcess {
        try ChildProcess("/usr/bin/kubectl", ["--kubeconfig", kubeconfig ?? fixture.kubeconfig,
                                              "--cache-dir", fixture.directory + "/kube-cache"] + arguments,
                         environment: ["HOME": fixture.directory])
    }

    private func items(_ output: String) throws -> [[String: Any]] {
        let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
        return object?["items"] as? [[String: Any]] ?? []
    }

    private func names(_ items: [[String: Any]]) -> [String] {
        items.compactMap { item in
            guard let metadata = item["metadata"] as? [String: Any], let name = metadata["name"] as? String else { return nil }
            return "\(metadata["namespace"] as? String ?? "")/\(name)"
        }
    }

    func testGetServicesInAllNamespacesAsJSON() throws {
        try fixture.server.put(.services, object: Objects.service("default", "web"))
        try fixture.server.put(.services, object: Objects.service("shop", "db", port: 5432))
        try fixture.server.put(.services, object: Objects.service("shop", "cache"))
        let run = try kubectl(["get", "services", "-A", "-o", "json"])
        XCTAssertEqual(run.wait(), 0, run.stderr)
        let items = try items(run.stdout)
        XCTAssertEqual(names(items), ["default/web", "shop/cache", "shop/db"])
        let db = items.first { names([$0]) == ["shop/db"] }
        let ports = (db?["spec"] as? [String: Any])?["ports"] as? [[String: Any]]
        XCTAssertEqual(ports?.first?["port"] as? Int, 5432)
        XCTAssertTrue(fixture.server.requests.contains { $0.path == "/api/v1/services" && $0.token == "token-1" })
    }

    func testChunkSizePagesWithContinueTokens() throws {
        for index in 0..<5 {
            try fixture.server.put(.services, object: Objects.service("default", "svc-\(index)"))
        }
        let run = try kubectl(["get", "services", "-A", "-o", "json", "--chunk-size=2"])
        XCTAssertEqual(run.wait(), 0, run.stderr)
        XCTAssertEqual(names(try items(run.stdout)), (0..<5).map { "default/svc-\($0)" })
        let lists = fixture.server.requests.filter { $0.path == "/api/v1/services" }
        XCTAssertEqual(lists.count, 3)
        XCTAssertEqual(lists.map { $0.query["limit"] }, ["2", "2", "2"])
        XCTAssertEqual(lists.filter { ($0.query["continue"] ?? "").isEmpty }.count, 1)
    }

    func testWatchOfEndpointSlicesSeesALaterChange() async throws {
        try fixture.server.put(.endpointSlices, object: Objects.endpointSlice("default", "web-abc", service: "web", address: "10.1.0.1"))
        let run = try kubectl(["get", "endpointslices", "-A", "--watch"])
        defer { run.terminate() }
        await eventually(10, "kubectl prints the existing slice") { run.stdout.contains("web-abc") }
        await eventually(10, "kubectl's watch is open") { fixture.server.openWatchCount == 1 }
        try fixture.server.put(.endpointSlices, object: Objects.endpointSlice("shop", "db-xyz", service: "db", address: "10.1.0.2"))
        await eventually(10, "kubectl prints the slice added later") { run.stdout.contains("db-xyz") }
        let watch = fixture.server.requests.first { $0.query["watch"] == "true" || $0.query["watch"] == "1" }
        XCTAssertEqual(watch?.path, "/apis/discovery.k8s.io/v1/endpointslices")
    }

    func testLabelAndFieldSelectors() throws {
        try fixture.server.put(.services, object: Objects.service("default", "web", labels: ["app": "web"]))
        try fixture.server.put(.services, object: Objects.service("default", "web-canary", labels: ["app": "web", "canary": "yes"]))
        try fixture.server.put(.services, object: Objects.service("shop", "db", labels: ["app": "db"]))
        let labelled = try kubectl(["get", "services", "-A", "-o", "json", "-l", "app=web,!canary"])
        XCTAssertEqual(labelled.wait(), 0, labelled.stderr)
        XCTAssertEqual(names(try items(labelled.stdout)), ["default/web"])
        let other = try kubectl(["get", "services", "-A", "-o", "json", "-l", "app!=web"])
        XCTAssertEqual(other.wait(), 0, other.stderr)
        XCTAssertEqual(names(try items(other.stdout)), ["shop/db"])
        let fielded = try kubectl(["get", "services", "-A", "-o", "json", "--field-selector", "metadata.namespace=default,metadata.name!=web"])
        XCTAssertEqual(fielded.wait(), 0, fielded.stderr)
        XCTAssertEqual(names(try items(fielded.stdout)), ["default/web-canary"])
        let bad = try kubectl(["get", "services", "-A", "--field-selector", "spec.type=ClusterIP"])
        XCTAssertNotEqual(bad.wait(), 0)
        XCTAssertTrue(bad.stderr.contains("field label not supported: spec.type"), bad.stderr)
    }

    func testClientCertificateAuthenticates() throws {
        try fixture.server.put(.nodes, object: ["metadata": ["name": "node-1", "labels": ["topology.kubernetes.io/zone": "a"]],
                                                "status": ["addresses": [["type": "InternalIP", "address": "192.168.0.1"]]]])
        let run = try kubectl(["get", "nodes", "-o", "json", "--field-selector", "metadata.name=node-1"],
                              kubeconfig: try fixture.kubeconfigWithClientCertificate())
        XCTAssertEqual(run.wait(), 0, run.stderr)
        XCTAssertEqual(names(try items(run.stdout)), ["/node-1"])
        XCTAssertTrue(fixture.server.requests.contains { $0.path == "/api/v1/nodes" && $0.token == nil })
    }

    func testBadTokenIsUnauthorizedAndDeniedVerbIsForbidden() throws {
        let wrong = try kubectl(["get", "services", "-A"], kubeconfig: try fixture.kubeconfig(token: "wrong"))
        XCTAssertNotEqual(wrong.wait(), 0)
        XCTAssertTrue(wrong.stderr.contains("You must be logged in to the server"), wrong.stderr)
        fixture.server.setForbidden(verb: "list", resource: .services)
        let denied = try kubectl(["get", "services", "-A"])
        XCTAssertNotEqual(denied.wait(), 0)
        XCTAssertTrue(denied.stderr.contains(
            #"services is forbidden: User "system:serviceaccount:kube-system:nftproxy" cannot list resource "services" in API group "" at the cluster scope"#),
            denied.stderr)
    }
}
