import KubeObjects
import ServiceModel
import XCTest

/// Kubernetes' own limits: what the API server refuses, nftproxy refuses, naming the limit,
/// the object and the field.
final class LimitTests: XCTestCase {
    private let prefix = "test.yaml: document 1: Service default/web: "
    private let slicePrefix = "test.yaml: document 1: EndpointSlice default/web-1: "

    private func endpoints(_ count: Int, addresses: Int = 1) -> String {
        (0..<count).map { index in
            let list = (0..<addresses).map { "198.19.\(index / 250).\(1 + index % 250 + $0)" }
            return "- addresses: [\(list.joined(separator: ", "))]"
        }.joined(separator: "\n")
    }

    private func ports(_ count: Int) -> String {
        (0..<count).map { "- {name: p\($0), port: \(8000 + $0)}" }.joined(separator: "\n")
    }

    func testEndpointSliceHoldsAtMost1000Endpoints() throws {
        let atLimit = sliceYAML("web-1", service: "web", body: "addressType: IPv4\nendpoints:\n" + endpoints(1000))
        XCTAssertNoThrow(try decode(atLimit))
        assertInputError(sliceYAML("web-1", service: "web", body: "addressType: IPv4\nendpoints:\n" + endpoints(1001)),
                         slicePrefix + "endpoints: 1001 endpoints; an EndpointSlice holds at most 1000")
    }

    func testEndpointSliceHoldsAtMost100Ports() throws {
        XCTAssertNoThrow(try decode(sliceYAML("web-1", service: "web", body: "addressType: IPv4\nports:\n" + ports(100))))
        assertInputError(sliceYAML("web-1", service: "web", body: "addressType: IPv4\nports:\n" + ports(101)),
                         slicePrefix + "ports: 101 ports; an EndpointSlice holds at most 100")
    }

    func testEndpointHasAtMost100Addresses() throws {
        XCTAssertNoThrow(try decode(sliceYAML("web-1", service: "web", body: "addressType: IPv4\nendpoints:\n" + endpoints(1, addresses: 100))))
        assertInputError(sliceYAML("web-1", service: "web", body: "addressType: IPv4\nendpoints:\n" + endpoints(1, addresses: 101)),
                         slicePrefix + "endpoints[0].addresses: 101 addresses; an endpoint holds at most 100")
    }

    func testSlicePortNamesAreLabelsAndUnique() {
        assertInputError(sliceYAML("web-1", service: "web", body: "addressType: IPv4\nports: [{name: HTTP, port: 80}]"),
                         slicePrefix + #"ports[0].name: "HTTP" is not a valid port name (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit)"#)
        assertInputError(sliceYAML("web-1", service: "web", body: "addressType: IPv4\nports: [{name: a, port: 80}, {name: a, port: 81, protocol: UDP}]"),
                         slicePrefix + #"ports[1].name: duplicate port name "a" (also ports[0])"#)
    }

    func testServiceNameIsADNS1035Label() throws {
        assertInputError(serviceYAML("1web", spec: "clusterIP: 198.18.0.1\nports: [{port: 80}]"),
                         #"test.yaml: document 1: Service: metadata.name: "1web" is not a valid Service name (at most 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit)"#)
        let longest = "a" + String(repeating: "b", count: 62)
        XCTAssertNotNil(try decode(serviceYAML(longest, spec: "clusterIP: 198.18.0.1\nports: [{port: 80}]")).service(longest))
        assertInputError(serviceYAML(longest + "c", spec: "clusterIP: 198.18.0.1\nports: [{port: 80}]"),
                         #"test.yaml: document 1: Service: metadata.name: "\#(longest)c" is not a valid Service name (at most 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit)"#)
    }

    func testNamespaceIsADNS1123Label() {
        assertInputError(serviceYAML("web", namespace: "Prod", spec: "clusterIP: 198.18.0.1\nports: [{port: 80}]"),
                         #"test.yaml: document 1: Service: metadata.namespace: "Prod" is not a valid namespace (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit)"#)
    }

    func testSliceNameIsADNS1123Subdomain() throws {
        XCTAssertNoThrow(try decode(sliceYAML("web.v4-1", service: "web", body: "addressType: IPv4")))
        assertInputError(sliceYAML("web..1", service: "web", body: "addressType: IPv4"),
                         #"test.yaml: document 1: EndpointSlice: metadata.name: "web..1" is not a valid EndpointSlice name (at most 253 characters: dot-separated parts of lowercase letters, digits and '-', each starting and ending with a letter or digit)"#)
    }

    func testServiceNameLabelIsALabelValue() {
        assertInputError(sliceYAML("web-1", service: "\"web app\"", body: "addressType: IPv4"),
                         slicePrefix + #"metadata.labels["kubernetes.io/service-name"]: "web app" is not a valid label value (at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit)"#)
    }

    func testServicePortNames() {
        assertInputError(serviceYAML("web", spec: "clusterIP: 198.18.0.1\nports: [{name: a, port: 80}, {port: 81}]"),
                         prefix + "spec.ports[1].name: missing (every port of a Service with several ports has a name)")
        assertInputError(serviceYAML("web", spec: "clusterIP: 198.18.0.1\nports: [{name: web_http, port: 80}]"),
                         prefix + #"spec.ports[0].name: "web_http" is not a valid port name (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit)"#)
    }

    /// The API server refuses a Service that repeats a nodePort (per protocol); before, the
    /// second claim was only dropped with a warning.
    func testNodePortRepeatedWithinAServiceIsRefused() throws {
        assertInputError(serviceYAML("a", spec: """
            type: NodePort
            clusterIP: 198.18.0.1
            ports:
            - {name: http, port: 80, nodePort: 30080}
            - {name: alt, port: 8080, nodePort: 30080}
            """), "test.yaml: document 1: Service default/a: spec.ports[1].nodePort: duplicate nodePort 30080/TCP (also spec.ports[0])")
        // The same number for another protocol is another nodePort.
        let decoded = try decode(serviceYAML("a", spec: """
            type: NodePort
            clusterIP: 198.18.0.1
            ports:
            - {name: dns, port: 53, protocol: UDP, nodePort: 30053}
            - {name: dns-tcp, port: 53, nodePort: 30053}
            """))
        XCTAssertEqual(decoded.service("a")?.ports.map(\.nodePort), [30053, 30053])
        XCTAssertEqual(decoded.warnings, [])
    }

    /// What was written, not the normalised address, and the IPv6 forms that are not addresses.
    func testAddressMessagesQuoteTheInput() {
        for text in ["1:1.2.3.4::1", "+1::", "1.2.3.4::", "fe80::1%eth0", "010.0.0.1"] {
            assertInputError(serviceYAML("web", spec: "clusterIP: \"\(text)\"\nports: [{port: 80}]"),
                             prefix + "spec.clusterIP: \"\(text)\" is not a valid IP address")
        }
        assertInputError(sliceYAML("web-1", service: "web", body: "addressType: IPv6\nendpoints: [{addresses: [\"::FFFF:198.19.0.1\", 198.19.0.1]}]"),
                         slicePrefix + #"endpoints[0].addresses[1]: "198.19.0.1" is not an IPv6 address (addressType is IPv6)"#)
        assertInputError(sliceYAML("web-1", service: "web", body: "addressType: IPv4\nendpoints: [{addresses: [\"2001:DB8:0::1\"]}]"),
                         slicePrefix + #"endpoints[0].addresses[0]: "2001:DB8:0::1" is not an IPv4 address (addressType is IPv4)"#)
    }

    /// The API server refuses a nodePort on a ClusterIP Service; before, it was dropped silently.
    func testNodePortOnAClusterIPServiceIsRefused() {
        assertInputError(serviceYAML("web", spec: "clusterIP: 198.18.0.1\nports: [{port: 80, nodePort: 30080}]"),
                         prefix + "spec.ports[0].nodePort: 30080 is set, but only Services of type NodePort or LoadBalancer have a nodePort (type is ClusterIP)")
    }
}
