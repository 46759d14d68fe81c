import Foundation
import KubeAPIStandIn
import XCTest

/// The official Python client (Debian's python3-kubernetes) lists and watches through the
/// stand-in, and sees a 410 Expired inside a watch stream as it would from a real API server.
final class PythonClientFidelityTests: XCTestCase {
    private static let python = "/usr/bin/python3"
    private var fixture: StandInFixture!

    override func setUp() async throws {
        let probe = try ChildProcess(Self.python, ["-c", "import kubernetes"])
        guard probe.wait() == 0 else {
            throw XCTSkip("python3-kubernetes is not installed (tools/install-deps.sh installs it)")
        }
        fixture = try await StandInFixture()
    }

    override func tearDown() async throws {
        await fixture?.shutdown()
    }

    private func python(_ script: String) throws -> ChildProcess {
        let path = fixture.directory + "/script-\(UUID().uuidString).py"
        try Data(script.utf8).write(to: URL(fileURLWithPath: path))
        return try ChildProcess(Self.python, [path], environment: ["KUBECONFIG": fixture.kubeconfig])
    }

    func testListsAndWatchesServicesAndEndpointSlices() async throws {
        try fixture.server.put(.services, object: Objects.service("default", "web"))
        try fixture.server.put(.endpointSlices, object: Objects.endpointSlice("default", "web-1", service: "web", address: "10.1.0.1"))
        let run = try python("""
            import sys
            from kubernetes import client, config, watch
            config.load_kube_config()
            v1 = client.CoreV1Api()
            services = v1.list_service_for_all_namespaces(limit=1)
            print("LIST", services.metadata.resource_version, [s.metadata.name for s in services.items], flush=True)
            slices = client.DiscoveryV1Api().list_endpoint_slice_for_all_namespaces()
            print("SLICES", [(s.metadata.name, s.endpoints[0].addresses[0]) for s in slices.items], flush=True)
            seen = 0
            for event in watch.Watch().stream(v1.list_service_for_all_namespaces,
                                              resource_version=services.metadata.resource_version, timeout_seconds=10):
                obj = event["object"]
                print("EVENT", event["type"], obj.metadata.namespace, obj.metadata.name, obj.metadata.resource_version, flush=True)
                seen += 1
                if seen == 3:
                    break
            """)
        defer { run.terminate() }
        await eventually(15, "the Python client's watch is open") { fixture.server.openWatchCount == 1 }
        try fixture.server.put(.services, object: Objects.service("shop", "db"))
        try fixture.server.put(.services, object: Objects.service("shop", "db", port: 5432))
        try fixture.server.delete(.services, namespace: "shop", name: "db")
        XCTAssertEqual(run.wait(), 0, run.stderr)
        let lines = run.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "LIST 3 ['web']", run.stdout)
        XCTAssertTrue(lines.contains("SLICES [('web-1', '10.1.0.1')]"), run.stdout)
        XCTAssertEqual(lines.filter { $0.hasPrefix("EVENT") }, ["EVENT ADDED shop db 4", "EVENT MODIFIED shop db 5", "EVENT DELETED shop db 6"])
    }

    func testExpiredInsideTheWatchStreamRaisesApiException410() async throws {
        try fixture.server.put(.services, object: Objects.service("default", "web"))
        try fixture.server.put(.services, object: Objects.service("default", "web", port: 81))
        fixture.server.compact()
        // With timeout_seconds the client does not retry: the first ERROR event raises.
        // Without it, the client retries once from the same resourceVersion, then raises.
        let run = try python("""
            from kubernetes import client, config, watch
            from kubernetes.client.rest import ApiException
            config.load_kube_config()
            v1 = client.CoreV1Api()
            for kwargs in ({"timeout_seconds": 10}, {}):
                try:
                    for event in watch.Watch().stream(v1.list_service_for_all_namespaces, resource_version="2", **kwargs):
                        print("UNEXPECTED", event["type"], flush=True)
                except ApiException as error:
                    print("APIEXCEPTION", error.status, error.reason, flush=True)
            """)
        XCTAssertEqual(run.wait(), 0, run.stderr)
        let lines = run.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines, ["APIEXCEPTION 410 Expired: too old resource version: 2 (3)",
                               "APIEXCEPTION 410 Expired: too old resource version: 2 (3)"], run.stdout + run.stderr)
        let watches = fixture.server.requests.filter { $0.query["watch"] == "True" || $0.query["watch"] == "true" }
        XCTAssertEqual(watches.count, 3, "one watch with timeout, two without (the client's single retry)")
        XCTAssertTrue(watches.allSatisfy { $0.query["resourceVersion"] == "2" })
    }
}
