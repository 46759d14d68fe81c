import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import ProxyDaemon
import ProxyEngineTesting
import ServiceModel
import Synchronization
import XCTest

/// Health-check node ports: which services get one and what it answers (pure logic), the
/// no-local-endpoints counts, the servers opened and closed against an in-memory listener,
/// and one real server on loopback.
final class HealthCheckNodePortTests: XCTestCase {
    private static func name(_ text: String) -> ServiceName { ServiceName(namespace: "shop", name: text) }

    private static func endpoint(_ address: String, node: String?, ready: Bool = true, terminating: Bool = false,
                                 port: UInt16 = 8080) -> Endpoint {
        Endpoint(address: IPAddress(address)!, port: port, ready: ready, serving: true, terminating: terminating, nodeName: node)
    }

    private static func service(_ name: String, external: TrafficPolicy = .local, internal: TrafficPolicy = .cluster,
                                healthCheckNodePort: UInt16? = 32100, clusterIPs: [String] = ["198.18.0.1"],
                                ports: [[Endpoint]]) -> Service {
        var service = Service(
            name: Self.name(name), clusterIPs: clusterIPs.map { IPAddress($0)! },
            ports: ports.enumerated().map { index, endpoints in
                ServicePort(name: "p\(index)", transport: .tcp, port: UInt16(80 + index), nodePort: UInt16(30080 + index),
                            endpoints: endpoints)
            },
            externalTrafficPolicy: external, internalTrafficPolicy: `internal`)
        service.healthCheckNodePort = healthCheckNodePort
        return service
    }

    // MARK: Which services, which counts

    func testLocalReadyEndpointsCountDistinctReadyAddressesOnThisNode() {
        let service = Self.service("web", ports: [
            [Self.endpoint("198.19.1.11", node: "node-1"), Self.endpoint("198.19.1.12", node: "node-1"),
             Self.endpoint("198.19.1.13", node: "node-1", ready: false, terminating: true),  // draining: not counted
             Self.endpoint("198.19.1.14", node: "node-1", ready: false),                      // not ready
             Self.endpoint("198.19.2.11", node: "node-2"), Self.endpoint("198.19.3.11", node: nil)],
            [Self.endpoint("198.19.1.11", node: "node-1", port: 8443)],  // the same pod on a second port
        ])
        XCTAssertEqual(HealthCheckNodePorts.localReadyEndpoints(of: service, node: "node-1"), 2)
        XCTAssertEqual(HealthCheckNodePorts.localReadyEndpoints(of: service, node: "node-2"), 1)
        XCTAssertEqual(HealthCheckNodePorts.localReadyEndpoints(of: service, node: "node-3"), 0)
        XCTAssertEqual(HealthCheckNodePorts.localReadyEndpoints(of: service, node: nil), 0, "an unknown node has no endpoints")

        let dualStack = Self.service("dual", ports: [[
            Self.endpoint("198.19.1.11", node: "node-1"), Self.endpoint("2001:db8:1:1::11", node: "node-1"),
            Self.endpoint("198.19.1.12", node: "node-1"), Self.endpoint("2001:db8:1:1::12", node: "node-1"),
            Self.endpoint("2001:db8:1:1::13", node: "node-1"),
        ]])
        XCTAssertEqual(HealthCheckNodePorts.localReadyEndpoints(of: dualStack, node: "node-1"), 3,
                       "dual-stack pods count once: the larger family's count")
    }

    func testOnlyLocalServicesWithAPortGetAHealthCheck() {
        let endpoints = [[Self.endpoint("198.19.1.11", node: "node-1")]]
        XCTAssertEqual(HealthCheckNodePorts.healthCheck(for: Self.service("a", ports: endpoints), node: "node-1"),
                       HealthCheckService(name: Self.name("a"), port: 32100, localEndpoints: 1))
        XCTAssertNil(HealthCheckNodePorts.healthCheck(for: Self.service("b", healthCheckNodePort: nil, ports: endpoints), node: "node-1"))
        XCTAssertNil(HealthCheckNodePorts.healthCheck(for: Self.service("c", external: .cluster, ports: endpoints), node: "node-1"))
        XCTAssertEqual(HealthCheckNodePorts.healthCheck(for: Self.service("d", ports: [[]]), node: "node-1")?.localEndpoints, 0,
                       "no endpoint at all: still served (it answers 503)")
    }

    // MARK: What it answers

    func testReplyFollowsTheCountAndTheProxyHealth() {
        let name = Self.name("web")
        let healthy = HealthCheckNodePorts.reply(service: name, localEndpoints: 2, proxyHealthy: true)
        XCTAssertEqual(healthy.status, .ok)
        XCTAssertEqual(healthy.body, #"{"service": {"namespace": "shop", "name": "web"}, "localEndpoints": 2, "serviceProxyHealthy": true}"#)
        XCTAssertEqual(healthy.headers.map { "\($0.0): \($0.1)" },
                       ["Content-Type: application/json", "X-Content-Type-Options: nosniff", "X-Load-Balancing-Endpoint-Weight: 2"])

        let none = HealthCheckNodePorts.reply(service: name, localEndpoints: 0, proxyHealthy: true)
        XCTAssertEqual(none.status, .serviceUnavailable)
        XCTAssertTrue(none.body.contains(#""localEndpoints": 0, "serviceProxyHealthy": true"#), none.body)
        XCTAssertTrue(none.headers.contains { $0.0 == "X-Load-Balancing-Endpoint-Weight" && $0.1 == "0" })

        let sick = HealthCheckNodePorts.reply(service: name, localEndpoints: 3, proxyHealthy: false)
        XCTAssertEqual(sick.status, .serviceUnavailable, "an unhealthy proxy fails every health check")
        XCTAssertTrue(sick.body.contains(#""localEndpoints": 3, "serviceProxyHealthy": false"#), sick.body)
        let parsed = try? JSONSerialization.jsonObject(with: Data(sick.body.utf8)) as? [String: Any]
        XCTAssertEqual((parsed?["service"] as? [String: String])?["name"], "web", "the body is JSON")
    }

    // MARK: No local endpoints

    func testNoLocalEndpointsCountsServicePortsPerPolicyAndFamily() {
        let remote = Self.endpoint("198.19.2.11", node: "node-2")
        let local = Self.endpoint("198.19.1.11", node: "node-1")
        // Two ports, endpoints only on node-2: both policies Local -> 2 internal, 2 external.
        XCTAssertEqual(NoLocalEndpoints(service: Self.service("both", internal: .local, ports: [[remote], [remote]]), node: "node-1"),
                       NoLocalEndpoints(internal: 2, external: 2))
        XCTAssertEqual(NoLocalEndpoints(service: Self.service("ext", ports: [[remote]]), node: "node-1"),
                       NoLocalEndpoints(internal: 0, external: 1))
        XCTAssertEqual(NoLocalEndpoints(service: Self.service("here", internal: .local, ports: [[remote, local]]), node: "node-1"),
                       NoLocalEndpoints(), "a local endpoint")
        XCTAssertEqual(NoLocalEndpoints(service: Self.service("empty", ports: [[]]), node: "node-1"), NoLocalEndpoints(),
                       "no endpoint anywhere: not counted (the service rejects, it does not drop)")
        let draining = Self.endpoint("198.19.1.12", node: "node-1", ready: false, terminating: true)
        XCTAssertEqual(NoLocalEndpoints(service: Self.service("draining", ports: [[remote, draining]]), node: "node-1"),
                       NoLocalEndpoints(), "a serving, terminating local endpoint still takes the traffic")
        XCTAssertEqual(NoLocalEndpoints(service: Self.service("cluster", external: .cluster, ports: [[remote]]), node: "node-1"),
                       NoLocalEndpoints())
        let dual = Self.service("dual", clusterIPs: ["198.18.0.9", "2001:db8:18::9"],
                                ports: [[remote, Self.endpoint("2001:db8:1:2::11", node: "node-2"),
                                         Self.endpoint("2001:db8:1:1::11", node: "node-1")]])
        XCTAssertEqual(NoLocalEndpoints(service: dual, node: "node-1"), NoLocalEndpoints(internal: 0, external: 1),
                       "IPv4 has no local endpoint, IPv6 has one")
    }

    func testTrackerUpdatedIncrementallyMatchesAFullRecount() {
        let local = Self.endpoint("198.19.1.11", node: "node-1"), remote = Self.endpoint("198.19.2.11", node: "node-2")
        var services = [
            Self.service("a", ports: [[local]]),
            Self.service("b", internal: .local, ports: [[remote]]),
            Self.service("c", external: .cluster, healthCheckNodePort: nil, ports: [[remote]]),
        ]
        var tracker = LocalEndpointTracker()
        tracker.update(ServiceMap(services: services), changed: nil, node: "node-1")
        XCTAssertEqual(tracker.healthChecks, [
            Self.name("a"): HealthCheckService(name: Self.name("a"), port: 32100, localEndpoints: 1),
            Self.name("b"): HealthCheckService(name: Self.name("b"), port: 32100, localEndpoints: 0),
        ])
        XCTAssertEqual(tracker.noLocalEndpoints, NoLocalEndpoints(internal: 1, external: 1))

        // a loses its endpoint, b goes away, c turns Local with a port, d arrives.
        services = [
            Self.service("a", ports: [[remote]]),
            Self.service("c", healthCheckNodePort: 32103, ports: [[local, remote]]),
            Self.service("d", internal: .local, healthCheckNodePort: 32104, ports: [[remote], [remote]]),
        ]
        let map = ServiceMap(services: services)
        tracker.update(map, changed: Set(["a", "b", "c", "d"].map(Self.name)), node: "node-1")
        var fresh = LocalEndpointTracker()
        fresh.update(map, changed: nil, node: "node-1")
        XCTAssertEqual(tracker.healthChecks, fresh.healthChecks)
        XCTAssertEqual(tracker.noLocalEndpoints, fresh.noLocalEndpoints)
        XCTAssertEqual(tracker.noLocalEndpoints, NoLocalEndpoints(internal: 2, external: 3))
        XCTAssertEqual(tracker.healthChecks[Self.name("c")]?.localEndpoints, 1)
        XCTAssertNil(tracker.healthChecks[Self.name("b")])

        // Only named services are recomputed: an unnamed change is not seen until named.
        let changedD = ServiceMap(services: [services[0], services[1], Self.service("d", healthCheckNodePort: 32104, ports: [[local]])])
        tracker.update(changedD, changed: [Self.name("a")], node: "node-1")
        XCTAssertEqual(tracker.healthChecks[Self.name("d")]?.localEndpoints, 0)
        tracker.update(changedD, changed: [Self.name("d")], node: "node-1")
        XCTAssertEqual(tracker.healthChecks[Self.name("d")]?.localEndpoints, 1)

        // Another node name recounts everything.
        tracker.update(changedD, changed: [], node: "node-2")
        XCTAssertEqual(tracker.healthChecks[Self.name("a")]?.localEndpoints, 1)
        XCTAssertEqual(tracker.healthChecks[Self.name("d")]?.localEndpoints, 0)
    }

    func testMetricIsAGaugeWithTrafficPolicyLabels() {
        let metrics = ProxyMetrics()
        metrics.noLocalEndpoints(NoLocalEndpoints(internal: 3, external: 5))
        metrics.noLocalEndpoints(NoLocalEndpoints(internal: 1, external: 2))
        let text = metrics.render()
        XCTAssertTrue(text.contains("# TYPE kubeproxy_sync_proxy_rules_no_local_endpoints_total gauge"), text)
        func value(_ policy: String) -> Double? {
            let prefix = #"kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy="\#(policy)"} "#
            return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
        }
        XCTAssertEqual(value("internal"), 1, text)
        XCTAssertEqual(value("external"), 2, text)
    }

    // MARK: Addresses

    func testAddressesFollowNodePortAddresses() {
        let local = ["127.0.0.1", "192.0.2.10", "10.0.0.5", "::1", "2001:db8:0:2::10"].map { IPAddress($0)! }
        XCTAssertEqual(HealthCheckAddresses.hosts(ranges: [], localAddresses: local), ["0.0.0.0", "::"],
                       "no range: every address of each family")
        XCTAssertEqual(HealthCheckAddresses.hosts(ranges: [CIDR("192.0.2.10/32")!], localAddresses: local), ["192.0.2.10", "::"],
                       "primary (the node IP as a /32) for IPv4, every IPv6 address")
        XCTAssertEqual(HealthCheckAddresses.hosts(ranges: [CIDR("0.0.0.0/0")!, CIDR("2001:db8::/32")!], localAddresses: local),
                       ["10.0.0.5", "127.0.0.1", "192.0.2.10", "2001:db8:0:2::10"])
        XCTAssertEqual(HealthCheckAddresses.hosts(ranges: [CIDR("172.16.0.0/12")!], localAddresses: local), ["::"],
                       "a range holding no local address: none of that family")
        XCTAssertEqual(HealthCheckAddresses.hosts(ranges: [], localAddresses: [IPAddress("192.0.2.10")!]), ["0.0.0.0"],
                       "no IPv6 address: no IPv6 wildcard")
    }
}

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

/// A real health-check server on loopback (the process's own namespace), read over HTTP.
final class HealthCheckSocketTests: XCTestCase {
    /// A port the kernel just had free on 127.0.0.1.
    private func freePort() async throws -> UInt16 {
        let probe = try await HTTPEndpointServer.start(host: "127.0.0.1", port: 0) { _, _ in HTTPReply(status: .ok, body: "") }
        let port = try XCTUnwrap(probe.localAddress?.port)
        await probe.close()
        return UInt16(port)
    }

    func testServesEveryPathAndRefusesAPortInUse() async throws {
        let port = try await freePort()
        let listening = NamespaceHealthCheckListening(namespace: nil)
        let count = Mutex(1)
        let listener = try await listening.listen(port: port, hosts: ["127.0.0.1"]) { _, _ in
            HealthCheckNodePorts.reply(service: ServiceName(namespace: "default", name: "web"),
                                       localEndpoints: count.withLock { $0 }, proxyHealthy: true)
        }

        for (path, expected) in [("/healthz", 200), ("/anything/else?x=1", 200)] {
            let url = try XCTUnwrap(URL(string: "http://127.0.0.1:\(port)\(path)"))
            let (data, response) = try await URLSession.shared.data(from: url)
            let http = try XCTUnwrap(response as? HTTPURLResponse)
            XCTAssertEqual(http.statusCode, expected, path)
            XCTAssertEqual(http.value(forHTTPHeaderField: "X-Load-Balancing-Endpoint-Weight"), "1")
            XCTAssertEqual(http.value(forHTTPHeaderField: "Content-Type"), "application/json")
            XCTAssertEqual(http.value(forHTTPHeaderField: "X-Content-Type-Options"), "nosniff")
            let body = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
            XCTAssertEqual(body["localEndpoints"] as? Int, 1)
            XCTAssertEqual(body["serviceProxyHealthy"] as? Bool, true)
        }
        count.withLock { $0 = 0 }
        let (_, response) = try await URLSession.shared.data(from: try XCTUnwrap(URL(string: "http://127.0.0.1:\(port)/")))
        XCTAssertEqual((response as? HTTPURLResponse)?.statusCode, 503)

        do {
            _ = try await listening.listen(port: port, hosts: ["127.0.0.1"]) { _, _ in HTTPReply(status: .ok, body: "") }
            XCTFail("a second server bound the same port")
        } catch let error as HealthCheckListenError {
            XCTAssertEqual(error.port, port)
            XCTAssertTrue(error.description.hasPrefix("cannot listen on 127.0.0.1:\(port): bind: "), error.description)
        }

        await listener.close()
        let closed = URLSession.shared
        do {
            _ = try await closed.data(from: try XCTUnwrap(URL(string: "http://127.0.0.1:\(port)/")))
            XCTFail("still answering after close")
        } catch {}
        XCTAssertFalse(try listening.localAddresses().isEmpty, "the namespace has addresses (at least loopback)")
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
