import KubeObjects
import ServiceModel
import ServiceTestSupport
import XCTest

/// Conflicts between objects: shared NodePorts and frontends, redefinitions.
final class ConflictTests: XCTestCase {
    private func nodePortService(_ name: String, namespace: String = "default", clusterIP: String,
                                 ports: String) -> String {
        serviceYAML(name, namespace: namespace, spec: "type: NodePort\nclusterIP: \(clusterIP)\nports:\n\(ports)")
    }

    func testNodePortConflictIsDeterministic() throws {
        let b = nodePortService("b", clusterIP: "198.18.0.2", ports: """
            - {name: web, port: 80, nodePort: 30080}
            - {name: dns, port: 53, protocol: UDP, nodePort: 30053}
            """)
        let a = nodePortService("a", namespace: "zzz", clusterIP: "198.18.0.1", ports: """
            - {name: http, port: 8080, nodePort: 30080}
            - {name: dns, port: 53, protocol: TCP, nodePort: 30053}
            """)
        let expectedWarning = Finding.conflict(FrontendKey(address: nil, transport: .tcp, port: 30080),
                                               loser: ServiceName(namespace: "zzz", name: "a"),
                                               owner: ServiceName(namespace: "default", name: "b"), field: "spec.ports[0].nodePort")
        // Whatever the input order, default/b sorts before zzz/a and wins; the map keeps both
        // claims and the compiler serves the winner (FrontendClaims, the rule both share).
        for inputs in [[("1.yaml", a), ("2.yaml", b)], [("1.yaml", b), ("2.yaml", a)], [("1.yaml", stream(a, b))]] {
            let decoded = try decode(inputs)
            XCTAssertEqual(decoded.warnings.findings, [expectedWarning], "30053/UDP and 30053/TCP do not conflict")
            XCTAssertEqual(decoded.service("b")?.ports.map(\.nodePort), [30080, 30053])
            XCTAssertEqual(decoded.service("a", namespace: "zzz")?.ports.map(\.nodePort), [30080, 30053])
        }
    }

    func testRedefinedServiceLaterWins() throws {
        let first = serviceYAML("web", spec: "clusterIP: 198.18.0.1\nports: [{port: 80}]")
        let second = serviceYAML("web", spec: "clusterIP: 198.18.0.1\nports: [{port: 81}]")
        let decoded = try decode([("a.yaml", first), ("b.yaml", second)])
        let web = ServiceName(namespace: "default", name: "web")
        XCTAssertEqual(decoded.service("web")?.ports.map(\.port), [81])
        XCTAssertEqual(decoded.warnings.findings, [Finding(.warning, .redefinedObject, .service(web, source: "b.yaml"),
                                                           related: .service(web, source: "a.yaml"))])

        // A later skipped definition removes the service.
        let headless = serviceYAML("web", spec: "clusterIP: None")
        let replaced = try decode([("a.yaml", first), ("b.yaml", headless)])
        XCTAssertEqual(replaced.map.services, [])
        XCTAssertEqual(replaced.warnings.count, 1)
    }

    func testRedefinedSliceLaterWins() throws {
        let svc = serviceYAML("web", spec: "clusterIP: 198.18.0.1\nports: [{port: 80}]")
        let body = "addressType: IPv4\nports: [{port: 8080}]\nendpoints: [{addresses: [%@]}]"
        let decoded = try decode([
            ("a.yaml", stream(svc, sliceYAML("web-1", service: "web", body: body.replacingOccurrences(of: "%@", with: "198.19.0.1")))),
            ("b.yaml", sliceYAML("web-1", service: "web", body: body.replacingOccurrences(of: "%@", with: "198.19.0.2"))),
        ])
        XCTAssertEqual(decoded.service("web")?.ports[0].endpoints.map(\.address), [ip("198.19.0.2")])
        func slice(_ source: String) -> DiagnosticObject {
            DiagnosticObject(kind: "EndpointSlice", namespace: "default", name: "web-1", source: source)
        }
        XCTAssertEqual(decoded.warnings.findings, [Finding(.warning, .redefinedObject, slice("b.yaml"), related: slice("a.yaml"))])
    }

    func testSharedClusterIPConflictsPerPort() throws {
        let yaml = stream(
            serviceYAML("two", spec: "clusterIP: 198.18.0.1\nports: [{name: a, port: 81}, {name: b, port: 80}]"),
            serviceYAML("one", spec: "clusterIP: 198.18.0.1\nports: [{port: 80}]"))
        let decoded = try decode(yaml)
        XCTAssertEqual(decoded.map.services.map(\.name.name), ["one", "two"])
        XCTAssertEqual(decoded.warnings.findings, [
            .conflict(FrontendKey(address: ip("198.18.0.1"), transport: .tcp, port: 80), loser: name("two"), owner: name("one"),
                      field: "spec.ports[1].port"),
        ])
    }

    func testSharedExternalIPOnlyConflictsOnTheSamePort() throws {
        let yaml = stream(
            serviceYAML("a", spec: "clusterIP: 198.18.0.1\nexternalIPs: [192.0.2.1]\nports: [{port: 80}]"),
            serviceYAML("b", spec: "clusterIP: 198.18.0.2\nexternalIPs: [192.0.2.1]\nports: [{port: 443}]"),
            serviceYAML("c", spec: "clusterIP: 198.18.0.3\nexternalIPs: [192.0.2.1, 192.0.2.3]\nports: [{port: 80}]"),
            serviceYAML("d", spec: "type: LoadBalancer\nclusterIP: 198.18.0.4\nports: [{port: 80}]",
                        status: "loadBalancer: {ingress: [{ip: 192.0.2.3}, {ip: 203.0.113.4}]}"))
        let decoded = try decode(yaml)
        XCTAssertEqual(decoded.service("c")?.externalIPs, [ip("192.0.2.1"), ip("192.0.2.3")])
        XCTAssertEqual(decoded.service("d")?.loadBalancerIPs, [ip("192.0.2.3"), ip("203.0.113.4")])
        XCTAssertEqual(decoded.warnings.findings, [
            .conflict(FrontendKey(address: ip("192.0.2.1"), transport: .tcp, port: 80), loser: name("c"), owner: name("a"),
                      field: "spec.ports[0].port"),
            .conflict(FrontendKey(address: ip("192.0.2.3"), transport: .tcp, port: 80), loser: name("d"), owner: name("c"),
                      field: "spec.ports[0].port"),
        ])
    }

    func testAddressesWithinOneServiceAreFolded() throws {
        let yaml = serviceYAML("a", spec: """
            type: LoadBalancer
            clusterIP: 198.18.0.1
            externalIPs: [192.0.2.1, 192.0.2.1, 198.18.0.1]
            ports: [{port: 80}]
            """, status: "loadBalancer: {ingress: [{ip: 203.0.113.1}, {ip: 192.0.2.1}]}")
        let decoded = try decode(yaml)
        XCTAssertEqual(decoded.service("a")?.externalIPs, [ip("192.0.2.1")])
        XCTAssertEqual(decoded.service("a")?.loadBalancerIPs, [ip("203.0.113.1")])
        XCTAssertEqual(decoded.warnings.findings, [
            Finding(.warning, .repeatedOwnAddress, .service(name("a")), field: "spec.externalIPs"),
            Finding(.warning, .repeatedOwnAddress, .service(name("a")), field: "status.loadBalancer.ingress"),
        ])
    }

    /// The one test of the wording: what the command line prints after `warning: `.
    func testConflictText() throws {
        let yaml = stream(
            serviceYAML("two", spec: "clusterIP: 198.18.0.1\nports: [{port: 80}]"),
            serviceYAML("one", spec: "clusterIP: 198.18.0.1\nports: [{port: 80}]"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: shop}")
        let decoded = try decode(yaml)
        XCTAssertEqual(decoded.warnings.map(\.text),
                       ["warning: 198.18.0.1 tcp/80 is claimed by both default/one and default/two; default/one keeps it"])
        XCTAssertEqual(decoded.notices.map(\.text),
                       ["notice: test.yaml: skipping apps/v1 Deployment shop/d (not a Service or EndpointSlice)"])
    }

    private func name(_ name: String) -> ServiceName { ServiceName(namespace: "default", name: name) }
}
