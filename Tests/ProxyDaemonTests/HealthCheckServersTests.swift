import Foundation
import Logging
import ProxyDaemon
import ProxyEngineTesting
import ServiceModel
import Synchronization
import XCTest

/// The servers opened and closed as services come and go, against an in-memory listener.
final class HealthCheckServersTests: XCTestCase {
    /// Records what is open; ports in `refused` cannot be opened.
    final class FakeListening: HealthCheckListening {
        struct Server { let port: UInt16; let hosts: [String]; let responder: HTTPEndpointServer.Responder }
        private let state = Mutex<(open: [Int: Server], next: Int, refused: Set<UInt16>)>(([:], 0, []))

        struct Listener: HealthCheckListener {
            let id: Int
            let owner: FakeListening
            func close() async { owner.state.withLock { _ = $0.open.removeValue(forKey: id) } }
        }

        func refuse(_ ports: Set<UInt16>) { state.withLock { $0.refused = ports } }
        var open: [Server] { state.withLock { $0.open.values.sorted { $0.port < $1.port } } }
        func answer(_ port: UInt16) -> HTTPReply? {
            guard let server = open.first(where: { $0.port == port }) else { return nil }
            return server.responder(.GET, "/any/path")
        }

        func listen(port: UInt16, hosts: [String], responder: @escaping HTTPEndpointServer.Responder) async throws
            -> any HealthCheckListener {
            try state.withLock { state throws(HealthCheckListenError) -> Listener in
                if state.refused.contains(port) {
                    throw HealthCheckListenError(host: hosts[0], port: port, reason: "bind: Address already in use")
                }
                state.next += 1
                state.open[state.next] = Server(port: port, hosts: hosts, responder: responder)
                return Listener(id: state.next, owner: self)
            }
        }
    }

    private static func name(_ text: String) -> ServiceName { ServiceName(namespace: "default", name: text) }
    private static func check(_ name: String, _ port: UInt16, _ count: Int) -> (ServiceName, HealthCheckService) {
        (Self.name(name), HealthCheckService(name: Self.name(name), port: port, localEndpoints: count))
    }

    func testServersOpenCloseAndReopenWithTheirServices() async throws {
        let listening = FakeListening()
        let counts = HealthCheckCounts()
        let health = ProxyHealth(healthTimeout: .seconds(60))
        let servers = HealthCheckServers(listening: listening, counts: counts, health: health)

        var wanted = Dictionary(uniqueKeysWithValues: [Self.check("a", 32100, 1), Self.check("b", 32101, 0)])
        counts.set(wanted)
        var changes = await servers.reconcile(wanted, hosts: ["192.0.2.10"])
        XCTAssertEqual(changes.opened, [Self.name("a"), Self.name("b")])
        XCTAssertEqual(listening.open.map(\.port), [32100, 32101])
        XCTAssertEqual(listening.open.map(\.hosts), [["192.0.2.10"], ["192.0.2.10"]])
        XCTAssertEqual(listening.answer(32100)?.status, .ok)
        XCTAssertEqual(listening.answer(32101)?.status, .serviceUnavailable)
        XCTAssertTrue(listening.answer(32101)?.body.contains(#""name": "b""#) ?? false)

        // Counts change without reopening: the same servers answer the new counts.
        wanted = Dictionary(uniqueKeysWithValues: [Self.check("a", 32100, 0), Self.check("b", 32101, 4)])
        counts.set(wanted)
        changes = await servers.reconcile(wanted, hosts: ["192.0.2.10"])
        XCTAssertEqual(changes, HealthCheckServers.Changes())
        XCTAssertEqual(listening.answer(32100)?.status, .serviceUnavailable)
        XCTAssertEqual(listening.answer(32101)?.status, .ok)
        XCTAssertTrue(listening.answer(32101)?.headers.contains { $0 == ("X-Load-Balancing-Endpoint-Weight", "4") } ?? false)

        // b's port moves, a goes away, c arrives.
        wanted = Dictionary(uniqueKeysWithValues: [Self.check("b", 32201, 4), Self.check("c", 32102, 1)])
        counts.set(wanted)
        changes = await servers.reconcile(wanted, hosts: ["192.0.2.10"])
        XCTAssertEqual(changes.closed, [Self.name("a"), Self.name("b")])
        XCTAssertEqual(changes.opened, [Self.name("b"), Self.name("c")])
        XCTAssertEqual(listening.open.map(\.port), [32102, 32201])
        let open = await servers.openPorts
        XCTAssertEqual(open, [Self.name("b"): 32201, Self.name("c"): 32102])

        // The addresses change (the node's IP arrived): everything reopens there.
        changes = await servers.reconcile(wanted, hosts: ["192.0.2.10", "2001:db8:0:2::10"])
        XCTAssertEqual(changes.opened.count, 2)
        XCTAssertEqual(listening.open.map(\.hosts), [["192.0.2.10", "2001:db8:0:2::10"], ["192.0.2.10", "2001:db8:0:2::10"]])

        // An unhealthy proxy fails every check.
        let sick = ProxyHealth(healthTimeout: .zero)
        sick.queuedUpdate()
        let sickListening = FakeListening()
        let sickServers = HealthCheckServers(listening: sickListening, counts: counts, health: sick)
        await sickServers.reconcile(wanted, hosts: ["192.0.2.10"])
        XCTAssertEqual(sickListening.answer(32201)?.status, .serviceUnavailable)
        XCTAssertTrue(sickListening.answer(32201)?.body.contains(#""serviceProxyHealthy": false"#) ?? false)

        await servers.closeAll()
        XCTAssertEqual(listening.open.count, 0)
    }

    func testAPortThatCannotBeBoundIsLoggedAndRetried() async throws {
        let listening = FakeListening()
        listening.refuse([32100])
        let logs = LogCapture()
        let servers = HealthCheckServers(listening: listening, counts: HealthCheckCounts(),
                                         health: ProxyHealth(healthTimeout: .seconds(60)), logger: logs.logger)
        let wanted = Dictionary(uniqueKeysWithValues: [Self.check("a", 32100, 1), Self.check("b", 32101, 1)])
        var changes = await servers.reconcile(wanted, hosts: ["0.0.0.0"])
        XCTAssertEqual(changes.opened, [Self.name("b")], "the other service is served")
        XCTAssertEqual(Array(changes.failed.keys), [Self.name("a")])
        XCTAssertTrue(logs.lines.contains { $0.contains("failed to start health-check node port") && $0.contains("Address already in use") },
                      logs.lines.joined(separator: "\n"))

        listening.refuse([])
        changes = await servers.reconcile(wanted, hosts: ["0.0.0.0"])
        XCTAssertEqual(changes.opened, [Self.name("a")], "retried at the next reconcile")
        XCTAssertEqual(listening.open.map(\.port), [32100, 32101])

        changes = await servers.reconcile(wanted, hosts: [])
        XCTAssertEqual(changes.failed.count, 2, "no address to listen on")
    }
}

/// Collects log lines (message and metadata) in memory.
final class LogCapture: Sendable {
    private let collected = Mutex<[String]>([])
    var lines: [String] { collected.withLock { $0 } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(capture: self) }
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let extra = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            capture.collected.withLock { $0.append("\(event.message) \(extra)") }
        }
    }
}

/// The controller fed by a real sync loop (against FakeKernel): the servers and the metric
/// follow each successful sync.
final class HealthCheckControllerTests: XCTestCase {
    private func eventually(_ what: String, _ condition: () async -> Bool) async {
        for _ in 0..<1000 {
            if await condition() { return }
            try? await Task.sleep(for: .milliseconds(10))
        }
        XCTFail("never happened: \(what)")
    }

    func testServersFollowTheSyncs() async throws {
        let node = NodeConfig(nodeName: "node-1", nodeIPs: [IPAddress("192.0.2.10")!], clusterCIDRs: [CIDR("198.19.0.0/16")!],
                              nodePortAddresses: [CIDR("192.0.2.10/32")!])
        let listening = HealthCheckServersTests.FakeListening()
        let health = ProxyHealth(healthTimeout: .seconds(3600))
        let metrics = ProxyMetrics()
        let controller = HealthCheckController(listening: listening, localAddresses: { [IPAddress("192.0.2.10")!, IPAddress("127.0.0.1")!] },
                                               health: health, metrics: metrics, logger: Logger(label: "test"))
        let source = ManualSource()
        let loop = SyncLoop(node: node, kernel: FakeKernel(), source: source, health: health,
                            settings: SyncSettings(minSyncPeriod: .zero), synced: controller.synced)
        let tasks = [Task { await loop.run() }, Task { await controller.run() }]
        defer { for task in tasks { task.cancel() } }

        func web(port: UInt16?, on nodeName: String) -> Service {
            var service = Service(name: ServiceName(namespace: "default", name: "web"), clusterIPs: [IPAddress("198.18.0.1")!],
                                  ports: [ServicePort(name: "", transport: .tcp, port: 80, nodePort: 30080, endpoints: [
                                      Endpoint(address: IPAddress("198.19.1.11")!, port: 8080, nodeName: nodeName)])],
                                  externalTrafficPolicy: .local)
            service.healthCheckNodePort = port
            return service
        }
        source.set(web(port: 32100, on: "node-1"))
        source.makeReady()
        loop.changesArrived()
        await eventually("the server opened") { listening.answer(32100)?.status == .ok }
        XCTAssertEqual(listening.open.first?.hosts, ["192.0.2.10"], "primary: the node's IP")

        source.set(web(port: 32100, on: "node-2"))
        loop.changesArrived()
        await eventually("503 once the endpoint left the node") { listening.answer(32100)?.status == .serviceUnavailable }
        XCTAssertTrue(metrics.render().contains(#"kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy="external"} 1"#))

        source.set(web(port: nil, on: "node-2"))
        loop.changesArrived()
        await eventually("the server closed") { listening.open.isEmpty }
        let open = await controller.openPorts
        XCTAssertEqual(open, [:])
    }
}
