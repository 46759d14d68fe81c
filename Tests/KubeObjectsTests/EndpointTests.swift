import KubeObjects
import ServiceModel
import ServiceTestSupport
import XCTest

/// Joining EndpointSlices to service ports.
final class EndpointTests: XCTestCase {
    /// A named targetPort resolves to different numbers on different pods: each slice carries
    /// its own number for the port name.
    func testNamedTargetPortThroughTwoSlices() throws {
        let yaml = stream(
            serviceYAML("web", spec: """
                clusterIP: 198.18.0.10
                ports:
                - name: http
                  port: 80
                  targetPort: http
                """),
            sliceYAML("web-old", service: "web", body: """
                addressType: IPv4
                ports: [{name: http, protocol: TCP, port: 8080}]
                endpoints:
                - addresses: [198.19.1.2]
                - addresses: [198.19.1.1]
                """),
            sliceYAML("web-new", service: "web", body: """
                addressType: IPv4
                ports: [{name: http, protocol: TCP, port: 9090}]
                endpoints:
                - addresses: [198.19.2.1]
                """))
        let web = try XCTUnwrap(try decode(yaml).service("web"))
        XCTAssertEqual(web.ports[0].endpoints.map { "\($0.address):\($0.port)" },
                       ["198.19.1.1:8080", "198.19.1.2:8080", "198.19.2.1:9090"])
    }

    /// `hints.forZones` and `hints.forNodes` names reach the endpoints; no hints: empty lists.
    func testTopologyHints() throws {
        let yaml = stream(
            serviceYAML("web", spec: """
                clusterIP: 198.18.0.10
                ports: [{name: http, port: 80}]
                """),
            sliceYAML("web-1", service: "web", body: """
                addressType: IPv4
                ports: [{name: http, protocol: TCP, port: 8080}]
                endpoints:
                - addresses: [198.19.1.1]
                  zone: zone-a
                  hints: {forZones: [{name: zone-a}, {name: zone-c}], forNodes: [{name: node-1}]}
                - addresses: [198.19.1.2]
                """))
        let endpoints = try XCTUnwrap(try decode(yaml).service("web")).ports[0].endpoints
        XCTAssertEqual(endpoints.map(\.zoneHints), [["zone-a", "zone-c"], []])
        XCTAssertEqual(endpoints.map(\.nodeHints), [["node-1"], []])
        XCTAssertEqual(endpoints.map(\.zone), ["zone-a", nil])
    }

    func testMultiPortMatchingByNameAndProtocol() throws {
        let yaml = stream(
            serviceYAML("dns", spec: """
                clusterIP: 198.18.0.53
                ports:
                - {name: dns, protocol: UDP, port: 53, targetPort: 53}
                - {name: dns-tcp, protocol: TCP, port: 53, targetPort: 53}
                - {name: metrics, protocol: TCP, port: 9153}
                """),
            sliceYAML("dns-a", service: "dns", body: """
                addressType: IPv4
                ports:
                - {name: dns, protocol: UDP, port: 5353}
                - {name: dns-tcp, protocol: TCP, port: 5354}
                - {name: metrics, protocol: UDP, port: 9999}
                endpoints:
                - addresses: [198.19.0.10]
                """),
            // A slice names each port once; a port without a number comes from another slice.
            sliceYAML("dns-b", service: "dns", body: """
                addressType: IPv4
                ports: [{name: metrics}]
                endpoints:
                - addresses: [198.19.0.11]
                """))
        let dns = try XCTUnwrap(try decode(yaml).service("dns"))
        XCTAssertEqual(dns.ports.map(\.name), ["dns", "dns-tcp", "metrics"])
        XCTAssertEqual(dns.ports[0].endpoints.map(\.port), [5353])
        XCTAssertEqual(dns.ports[1].endpoints.map(\.port), [5354])
        XCTAssertEqual(dns.ports[2].endpoints, [], "protocol differs, or the slice port has no number")
    }

    func testDualStack() throws {
        let yaml = stream(
            serviceYAML("dual", spec: """
                clusterIP: 198.18.0.40
                clusterIPs: [198.18.0.40, "2001:db8::40"]
                ipFamilyPolicy: RequireDualStack
                ports: [{name: http, port: 80}]
                """),
            sliceYAML("dual-v6", service: "dual", body: """
                addressType: IPv6
                ports: [{name: http, port: 8080}]
                endpoints:
                - addresses: ["2001:db8:1::2"]
                  nodeName: node-1
                  zone: zone-a
                - addresses: ["2001:DB8:1:0::1"]
                """),
            sliceYAML("dual-v4", service: "dual", body: """
                addressType: IPv4
                ports: [{name: http, port: 8080}]
                endpoints:
                - addresses: [198.19.1.1]
                """))
        let dual = try XCTUnwrap(try decode(yaml).service("dual"))
        XCTAssertEqual(dual.clusterIPs, [ip("198.18.0.40"), ip("2001:db8::40")])
        XCTAssertEqual(dual.ports[0].endpoints, [
            Endpoint(address: ip("198.19.1.1"), port: 8080),
            Endpoint(address: ip("2001:db8:1::1"), port: 8080),
            Endpoint(address: ip("2001:db8:1::2"), port: 8080, nodeName: "node-1", zone: "zone-a"),
        ])
    }

    func testIPv6EndpointsKeptForSingleStackIPv4Service() throws {
        let yaml = stream(
            serviceYAML("v4", spec: "clusterIP: 198.18.0.41\nports: [{port: 80}]"),
            sliceYAML("v4-x", service: "v4", body: """
                addressType: IPv6
                ports: [{port: 80}]
                endpoints: [{addresses: ["2001:db8::5"]}]
                """))
        XCTAssertEqual(try decode(yaml).service("v4")?.ports[0].endpoints.map(\.address), [ip("2001:db8::5")])
    }

    func testConditionDefaults() throws {
        let yaml = stream(
            serviceYAML("c", spec: "clusterIP: 198.18.0.1\nports: [{port: 80}]"),
            sliceYAML("c-1", service: "c", body: """
                addressType: IPv4
                ports: [{port: 80}]
                endpoints:
                - addresses: [198.19.0.1]
                - addresses: [198.19.0.2]
                  conditions: {}
                - addresses: [198.19.0.3]
                  conditions: {ready: false}
                - addresses: [198.19.0.4]
                  conditions: {ready: false, serving: true, terminating: true}
                - addresses: [198.19.0.5]
                  conditions: {ready: null, serving: false}
                - addresses: [198.19.0.6, 198.19.0.7]
                  conditions: {terminating: true}
                """))
        let endpoints = try XCTUnwrap(try decode(yaml).service("c")?.ports[0].endpoints)
        let states = endpoints.map { "\($0.address) r=\($0.ready) s=\($0.serving) t=\($0.terminating)" }
        XCTAssertEqual(states, [
            "198.19.0.1 r=true s=true t=false",
            "198.19.0.2 r=true s=true t=false",
            "198.19.0.3 r=false s=false t=false",
            "198.19.0.4 r=false s=true t=true",
            "198.19.0.5 r=true s=false t=false",
            "198.19.0.6 r=true s=true t=true",
        ])
    }

    func testDeduplicationPrefersReadyAndOtherwiseFirst() throws {
        let yaml = stream(
            serviceYAML("d", spec: "clusterIP: 198.18.0.1\nports: [{name: p, port: 80}]"),
            // Slices are visited by name: d-a first.
            sliceYAML("d-b", service: "d", body: """
                addressType: IPv4
                ports: [{name: p, port: 8080}]
                endpoints:
                - addresses: [198.19.0.1]
                  conditions: {ready: true}
                  nodeName: later-ready
                - addresses: [198.19.0.2]
                  conditions: {ready: true}
                  nodeName: later
                - addresses: [198.19.0.3]
                  conditions: {ready: false}
                  nodeName: later-unready
                """),
            // A slice names each port once: the same pods on port 8081 come in a slice of their own.
            sliceYAML("d-a", service: "d", body: """
                addressType: IPv4
                ports: [{name: p, port: 8080}]
                endpoints:
                - addresses: [198.19.0.1]
                  conditions: {ready: false}
                  nodeName: first-unready
                - addresses: [198.19.0.2]
                  conditions: {ready: true}
                  nodeName: first
                - addresses: [198.19.0.3]
                  conditions: {ready: false}
                  nodeName: first-unready
                """),
            sliceYAML("d-a2", service: "d", body: """
                addressType: IPv4
                ports: [{name: p, port: 8081}]
                endpoints:
                - addresses: [198.19.0.1]
                  conditions: {ready: false}
                  nodeName: first-unready
                - addresses: [198.19.0.2]
                  conditions: {ready: true}
                  nodeName: first
                - addresses: [198.19.0.3]
                  conditions: {ready: false}
                  nodeName: first-unready
                """))
        let endpoints = try XCTUnwrap(try decode(yaml).service("d")?.ports[0].endpoints)
        XCTAssertEqual(endpoints.map { "\($0.address):\($0.port) \($0.nodeName ?? "-")" }, [
            "198.19.0.1:8080 later-ready",
            "198.19.0.1:8081 first-unready",
            "198.19.0.2:8080 first",
            "198.19.0.2:8081 first",
            "198.19.0.3:8080 first-unready",
            "198.19.0.3:8081 first-unready",
        ])
    }

    func testSlicesOnlyJoinTheirOwnNamespaceAndService() throws {
        let yaml = stream(
            serviceYAML("web", namespace: "a", spec: "clusterIP: 198.18.0.1\nports: [{port: 80}]"),
            serviceYAML("web", namespace: "b", spec: "clusterIP: 198.18.0.2\nports: [{port: 80}]"),
            sliceYAML("web-1", service: "web", namespace: "b", body: """
                addressType: IPv4
                ports: [{port: 80}]
                endpoints: [{addresses: [198.19.0.2]}]
                """),
            sliceYAML("other-1", service: "other", namespace: "a", body: """
                addressType: IPv4
                ports: [{port: 80}]
                endpoints: [{addresses: [198.19.0.9]}]
                """))
        let decoded = try decode(yaml)
        XCTAssertEqual(decoded.service("web", namespace: "a")?.ports[0].endpoints, [])
        XCTAssertEqual(decoded.service("web", namespace: "b")?.ports[0].endpoints.map(\.address), [ip("198.19.0.2")])
    }

    func testSkippedSlices() throws {
        let yaml = stream(
            serviceYAML("s", spec: "clusterIP: 198.18.0.1\nports: [{port: 80}]"),
            sliceYAML("s-fqdn", service: "s", body: """
                addressType: FQDN
                ports: [{port: 80}]
                endpoints: [{addresses: [db.example]}]
                """),
            """
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: orphan}
            addressType: IPv4
            endpoints: [{addresses: [198.19.0.1]}]
            """,
            """
            apiVersion: discovery.k8s.io/v1beta1
            kind: EndpointSlice
            metadata: {name: old, namespace: default}
            addressType: IPv4
            """)
        let decoded = try decode(yaml)
        func slice(_ name: String, _ document: Int, apiVersion: String? = nil) -> DiagnosticObject {
            DiagnosticObject(kind: "EndpointSlice", apiVersion: apiVersion, namespace: "default", name: name, source: "test.yaml",
                             document: "document \(document)")
        }
        XCTAssertEqual(decoded.notices.findings, [
            Finding(.notice, .fqdnEndpointSlice, slice("s-fqdn", 2), field: "addressType"),
            Finding(.notice, .endpointSliceWithoutService, slice("orphan", 3), field: #"metadata.labels["kubernetes.io/service-name"]"#),
            Finding(.notice, .unsupportedAPIVersion, slice("old", 4, apiVersion: "discovery.k8s.io/v1beta1"), field: "apiVersion"),
        ])
        XCTAssertEqual(decoded.service("s")?.ports[0].endpoints, [])
    }

    /// Endpoints of the usual shape are read without field paths, all others field by field
    /// (`hints: {}` sends an endpoint that way): both give the same endpoints, and an endpoint
    /// that is wrong in a later field gets the message of the checked path.
    func testUsualAndCheckedEndpointShapesAgree() throws {
        let endpoints = """
            - addresses: [198.19.0.1]
              nodeName: node-1
              zone: zone-a
            - addresses: [198.19.0.2, 198.19.0.9]
              conditions: {ready: false, serving: null}
              nodeName: ""
              zone: null
            - addresses: [198.19.0.3]
              conditions: null
            """
        let checked = endpoints.replacingOccurrences(of: "- addresses:", with: "- hints: {}\n  addresses:")
        func states(_ body: String) throws -> [String] {
            let yaml = stream(
                serviceYAML("w", spec: "clusterIP: 198.18.0.1\nports: [{port: 80}]"),
                sliceYAML("w-1", service: "w", body: "addressType: IPv4\nports: [{port: 80}]\nendpoints:\n" + body))
            let endpoints = try XCTUnwrap(try decode(yaml).service("w")?.ports[0].endpoints)
            return endpoints.map { "\($0.address) r=\($0.ready) s=\($0.serving) t=\($0.terminating) n=\($0.nodeName ?? "-") z=\($0.zone ?? "-")" }
        }
        let expected = [
            "198.19.0.1 r=true s=true t=false n=node-1 z=zone-a",
            "198.19.0.2 r=false s=false t=false n=- z=-",
            "198.19.0.3 r=true s=true t=false n=- z=-",
        ]
        XCTAssertEqual(try states(endpoints), expected)
        XCTAssertEqual(try states(checked), expected)

        for (body, message) in [
            ("- addresses: [198.19.0.1, \"2001:db8::1\"]",
             #"endpoints[0].addresses[1]: "2001:db8::1" is not an IPv4 address (addressType is IPv4)"#),
            ("- addresses: [198.19.0.1]\n  conditions: {ready: \"yes\"}",
             #"endpoints[0].conditions.ready: expected a boolean, found a string ("yes")"#),
            ("- addresses: [198.19.0.1]\n  zone: 7", "endpoints[0].zone: expected a string, found an integer (7)"),
            ("- addresses: []", "endpoints[0].addresses: an endpoint needs at least one address"),
        ] {
            let yaml = sliceYAML("w-1", service: "w", body: "addressType: IPv4\nports: [{port: 80}]\nendpoints:\n" + body)
            assertInputError(yaml, "test.yaml: document 1: EndpointSlice default/w-1: " + message)
        }
    }
}
