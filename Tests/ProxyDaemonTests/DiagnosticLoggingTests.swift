import Foundation
import Logging
import ProxyDaemon
import ProxyEngineTesting
import ServiceModel
import Synchronization
import XCTest

/// Warnings reach the daemon's log as structured fields, not as a pre-formatted line.
final class DiagnosticLoggingTests: XCTestCase {
    /// The lines a JSON logger wrote.
    private final class Lines: Sendable {
        private let written = Mutex<[String]>([])

        var all: [String] { written.withLock { $0 } }

        /// A logger writing JSON lines here.
        var logger: Logger {
            Logger(label: "nftproxy.sync") { label in
                JSONLogHandler(label: label) { [self] line in written.withLock { $0.append(line) } }
            }
        }

        /// Each line as a JSON object.
        var objects: [[String: String]] {
            all.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        }
    }

    func testADiagnosticIsLoggedWithItsParts() {
        let lines = Lines()
        let skipped = Diagnostic(.notice, .externalNameService,
                                 object: .service(ServiceName(namespace: "shop", name: "db"), source: "API", document: "document 1"),
                                 field: "spec.type", message: "API: skipping Service shop/db (type ExternalName)")
        lines.logger.log(skipped)
        let logged = lines.objects
        XCTAssertEqual(logged.count, 1)
        XCTAssertEqual(logged.first?["level"], "notice")
        XCTAssertEqual(logged.first?["msg"], skipped.message)
        XCTAssertEqual(logged.first?["code"], "external-name-service")
        XCTAssertEqual(logged.first?["kind"], "Service")
        XCTAssertEqual(logged.first?["namespace"], "shop")
        XCTAssertEqual(logged.first?["name"], "db")
        XCTAssertEqual(logged.first?["field"], "spec.type")
        XCTAssertEqual(logged.first?["source"], "API")
        XCTAssertNil(logged.first?["frontend"])
    }

    func testTheSyncLoopLogsAConflictWithTheServiceAndField() async throws {
        func service(_ namespace: String, _ last: Int) -> Service {
            Service(name: ServiceName(namespace: namespace, name: "web"), clusterIPs: [IPAddress("198.18.0.\(last)")!],
                    ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 30080)])
        }
        let lines = Lines()
        let source = ManualSource()
        source.makeReady()
        source.set(service("a", 1))
        source.set(service("b", 2))
        let node = NodeConfig(nodeName: "node-1", nodeIPs: [IPAddress("192.0.2.10")!], clusterCIDRs: [CIDR("198.19.0.0/16")!])
        let loop = SyncLoop(node: node, kernel: FakeKernel(), source: source, health: ProxyHealth(healthTimeout: .seconds(3600)),
                            settings: SyncSettings(minSyncPeriod: .zero), logger: lines.logger)
        let task = Task { await loop.run() }
        defer { task.cancel() }
        var waited = 0
        while await loop.reports.isEmpty, waited < 1000 {
            try await Task.sleep(for: .milliseconds(10))
            waited += 1
        }
        let reports = await loop.reports
        XCTAssertEqual(reports.count, 1, "no sync")

        let conflicts = lines.objects.filter { $0["code"] == Diagnostic.Code.frontendConflict.rawValue }
        XCTAssertEqual(conflicts.count, 1, "\(lines.all)")
        XCTAssertEqual(conflicts.first?["level"], "warning")
        XCTAssertEqual(conflicts.first?["namespace"], "b")
        XCTAssertEqual(conflicts.first?["name"], "web")
        XCTAssertEqual(conflicts.first?["field"], "spec.ports[0].nodePort")
        XCTAssertEqual(conflicts.first?["frontend"], "NodePort tcp/30080")
        XCTAssertEqual(conflicts.first?["related"], "Service a/web")
    }
}
