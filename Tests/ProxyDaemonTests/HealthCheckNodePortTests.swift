import Foundation
import ProxyDaemon
import ServiceModel
import XCTest

/// Health-check node ports, the pure logic: which services get one, what it answers, the
/// no-local-endpoints counts and where servers listen. (HealthCheckServersTests: opening
/// and closing; HealthCheckSocketTests: a real server.)
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
