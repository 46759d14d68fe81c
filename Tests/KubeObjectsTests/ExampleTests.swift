import Foundation
import KubeObjects
import ServiceModel
import ServiceTestSupport
import XCTest

/// The manifests shipped in examples/ decode to what their comments promise.
final class ExampleTests: XCTestCase {
    private func example(_ name: String) throws -> String {
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return try String(contentsOf: root.appendingPathComponent("examples/\(name)"), encoding: .utf8)
    }

    func testEchoServer() throws {
        let decoded = try decode([("examples/echo-server.yaml", try example("echo-server.yaml"))])
        XCTAssertEqual(decoded.notices.findings, [Finding(.notice, .skippedKind, DiagnosticObject(
            kind: "Deployment", apiVersion: "apps/v1", namespace: "default", name: "echo-server",
            source: "examples/echo-server.yaml", document: "document 1"))])
        XCTAssertEqual(decoded.warnings, [])
        XCTAssertEqual(decoded.map, ServiceMap(services: [
            Service(
                name: ServiceName(namespace: "default", name: "echo-server"),
                clusterIPs: [ip("198.18.0.10")],
                ports: [
                    ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 32000, endpoints: [
                        Endpoint(address: ip("198.19.1.11"), port: 8080, nodeName: "node-1"),
                        Endpoint(address: ip("198.19.1.12"), port: 8080, nodeName: "node-1"),
                        Endpoint(address: ip("198.19.1.13"), port: 8080, nodeName: "node-1"),
                    ]),
                ]),
        ]))
    }
}
