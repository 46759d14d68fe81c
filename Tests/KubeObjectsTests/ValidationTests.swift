import KubeObjects
import ServiceModel
import XCTest

/// Every invalid field is an error that names the source, the object and the field path.
final class ValidationTests: XCTestCase {
    private func service(_ spec: String, status: String = "") -> String {
        serviceYAML("web", spec: spec, status: status)
    }

    private func slice(_ body: String) -> String {
        sliceYAML("web-1", service: "web", body: body)
    }

    private let prefix = "services.yaml: document 1: Service default/web: "
    private let slicePrefix = "services.yaml: document 1: EndpointSlice default/web-1: "

    private func check(_ contents: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        assertInputError(contents, message, source: "services.yaml", file: file, line: line)
    }

    func testPortOutOfRange() {
        check(service("clusterIP: 198.18.0.1\nports:\n- {name: a, port: 80}\n- {name: b, port: 70000}"),
              prefix + "spec.ports[1].port: 70000 is not a valid port (1-65535)")
        check(service("clusterIP: 198.18.0.1\nports: [{port: 0}]"),
              prefix + "spec.ports[0].port: 0 is not a valid port (1-65535)")
        check(service("clusterIP: 198.18.0.1\nports: [{name: a}]"), prefix + "spec.ports[0].port: missing")
        check(service("type: NodePort\nclusterIP: 198.18.0.1\nports: [{port: 80, nodePort: 65536}]"),
              prefix + "spec.ports[0].nodePort: 65536 is not a valid port (1-65535)")
        check(service("clusterIP: 198.18.0.1\nports: [{port: 80, targetPort: -1}]"),
              prefix + "spec.ports[0].targetPort: -1 is not a valid port (1-65535)")
        check(slice("addressType: IPv4\nports: [{name: http, port: 100000}]"),
              slicePrefix + "ports[0].port: 100000 is not a valid port (1-65535)")
    }

    func testHealthCheckNodePort() {
        check(service("type: LoadBalancer\nclusterIP: 198.18.0.1\nexternalTrafficPolicy: Local\nhealthCheckNodePort: 65536\nports: [{port: 80}]"),
              prefix + "spec.healthCheckNodePort: 65536 is not a valid port (1-65535)")
        check(service("type: LoadBalancer\nclusterIP: 198.18.0.1\nexternalTrafficPolicy: Local\nhealthCheckNodePort: -3\nports: [{port: 80}]"),
              prefix + "spec.healthCheckNodePort: -3 is not a valid port (1-65535)")
        check(service("type: LoadBalancer\nclusterIP: 198.18.0.1\nhealthCheckNodePort: 32100\nports: [{port: 80}]"),
              prefix + "spec.healthCheckNodePort: 32100 is set, but only Services of type LoadBalancer or NodePort with externalTrafficPolicy Local have a healthCheckNodePort (externalTrafficPolicy is Cluster)")
        check(service("clusterIP: 198.18.0.1\nexternalTrafficPolicy: Local\nhealthCheckNodePort: 32100\nports: [{port: 80}]"),
              prefix + "spec.healthCheckNodePort: 32100 is set, but only Services of type LoadBalancer or NodePort with externalTrafficPolicy Local have a healthCheckNodePort (type is ClusterIP)")
    }

    func testTargetPortNames() {
        check(service("clusterIP: 198.18.0.1\nports: [{port: 80, targetPort: \"8080\"}]"),
              prefix + #"spec.ports[0].targetPort: "8080" is not a valid port name (1-15 lowercase letters, digits and '-', with at least one letter)"#)
        check(service("clusterIP: 198.18.0.1\nports: [{port: 80, targetPort: Web}]"),
              prefix + #"spec.ports[0].targetPort: "Web" is not a valid port name (1-15 lowercase letters, digits and '-', with at least one letter)"#)
        check(service("clusterIP: 198.18.0.1\nports: [{port: 80, targetPort: [1]}]"),
              prefix + "spec.ports[0].targetPort: expected a port number or name, found a list")
    }

    func testUnknownProtocol() {
        check(service("clusterIP: 198.18.0.1\nports: [{port: 80, protocol: ICMP}]"),
              prefix + #"spec.ports[0].protocol: unknown protocol "ICMP" (expected TCP, UDP or SCTP)"#)
        check(service("clusterIP: 198.18.0.1\nports: [{port: 80, protocol: tcp}]"),
              prefix + #"spec.ports[0].protocol: unknown protocol "tcp" (expected TCP, UDP or SCTP)"#)
        check(slice("addressType: IPv4\nports: [{port: 80, protocol: QUIC}]"),
              slicePrefix + #"ports[0].protocol: unknown protocol "QUIC" (expected TCP, UDP or SCTP)"#)
    }

    func testInvalidAddresses() {
        check(service("clusterIP: 198.18.0.300\nports: [{port: 80}]"),
              prefix + #"spec.clusterIP: "198.18.0.300" is not a valid IP address"#)
        check(service("clusterIP: 198.18.0.1\nclusterIPs: [198.18.0.1, \"2001:db8::g\"]\nports: [{port: 80}]"),
              prefix + #"spec.clusterIPs[1]: "2001:db8::g" is not a valid IP address"#)
        check(service("clusterIP: 198.18.0.2\nclusterIPs: [198.18.0.1]\nports: [{port: 80}]"),
              prefix + #"spec.clusterIP: "198.18.0.2" does not match spec.clusterIPs[0] "198.18.0.1""#)
        check(service("clusterIPs: [198.18.0.1, 198.18.0.2]\nports: [{port: 80}]"),
              prefix + "spec.clusterIPs[1]: \"198.18.0.2\" is IPv4 like spec.clusterIPs[0]; dual-stack needs one of each family")
        check(service("clusterIP: 198.18.0.1\nexternalIPs: [192.0.2.1, example.com]\nports: [{port: 80}]"),
              prefix + #"spec.externalIPs[1]: "example.com" is not a valid IP address"#)
        check(service("type: LoadBalancer\nclusterIP: 198.18.0.1\nports: [{port: 80}]",
                      status: "loadBalancer:\n  ingress:\n  - ip: 203.0.113.256"),
              prefix + #"status.loadBalancer.ingress[0].ip: "203.0.113.256" is not a valid IP address"#)
        check(slice("addressType: IPv4\nendpoints:\n- addresses: [198.19.0.1]\n- addresses: [pod-a]"),
              slicePrefix + #"endpoints[1].addresses[0]: "pod-a" is not a valid IP address"#)
        check(slice("addressType: IPv4\nendpoints:\n- addresses: [\"2001:db8::1\"]"),
              slicePrefix + #"endpoints[0].addresses[0]: "2001:db8::1" is not an IPv4 address (addressType is IPv4)"#)
        check(slice("addressType: IPv6\nendpoints:\n- addresses: []"),
              slicePrefix + "endpoints[0].addresses: an endpoint needs at least one address")
    }

    func testInvalidCIDR() {
        check(service("type: LoadBalancer\nclusterIP: 198.18.0.1\nports: [{port: 80}]\nloadBalancerSourceRanges: [203.0.113.0/33]"),
              prefix + #"spec.loadBalancerSourceRanges[0]: "203.0.113.0/33" is not a valid CIDR"#)
        let annotated = """
            apiVersion: v1
            kind: Service
            metadata:
              name: web
              annotations:
                service.beta.kubernetes.io/load-balancer-source-ranges: "203.0.113.0/24,203.0.113.x/24"
            spec:
              clusterIP: 198.18.0.1
            """
        check(annotated, prefix + #"metadata.annotations["service.beta.kubernetes.io/load-balancer-source-ranges"]: "203.0.113.x/24" is not a valid CIDR"#)
    }

    func testUnknownPolicyValues() {
        check(service("clusterIP: 198.18.0.1\nexternalTrafficPolicy: Global"),
              prefix + #"spec.externalTrafficPolicy: unknown externalTrafficPolicy "Global" (expected Cluster or Local)"#)
        check(service("clusterIP: 198.18.0.1\ninternalTrafficPolicy: PreferLocal"),
              prefix + #"spec.internalTrafficPolicy: unknown internalTrafficPolicy "PreferLocal" (expected Cluster or Local)"#)
        check(service("clusterIP: 198.18.0.1\nsessionAffinity: Cookie"),
              prefix + #"spec.sessionAffinity: unknown sessionAffinity "Cookie" (expected None or ClientIP)"#)
        check(service("clusterIP: 198.18.0.1\nsessionAffinity: ClientIP\nsessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}"),
              prefix + "spec.sessionAffinityConfig.clientIP.timeoutSeconds: 0 is not a valid timeout (1-86400 seconds)")
        check(service("clusterIP: 198.18.0.1\ntype: Internal"),
              prefix + #"spec.type: unknown service type "Internal" (expected ClusterIP, NodePort, LoadBalancer or ExternalName)"#)
        check(slice("ports: []"), slicePrefix + "addressType: missing")
        check(slice("addressType: IPv5"), slicePrefix + #"addressType: unknown addressType "IPv5" (expected IPv4, IPv6 or FQDN)"#)
    }

    func testDuplicatePorts() {
        check(service("clusterIP: 198.18.0.1\nports:\n- {name: a, port: 80}\n- {name: b, port: 80, protocol: UDP}\n- {name: c, port: 80}"),
              prefix + "spec.ports[2]: duplicate port 80/TCP (also spec.ports[0])")
        check(service("clusterIP: 198.18.0.1\nports:\n- {name: a, port: 80}\n- {name: a, port: 81}"),
              prefix + #"spec.ports[1].name: duplicate port name "a" (also spec.ports[0])"#)
        // A port name is unique among all ports of the Service, whatever the protocol.
        check(service("clusterIP: 198.18.0.1\nports:\n- {name: dns, port: 53}\n- {name: dns, port: 53, protocol: UDP}"),
              prefix + #"spec.ports[1].name: duplicate port name "dns" (also spec.ports[0])"#)
    }

    func testWrongShapes() {
        check(service("- clusterIP: 198.18.0.1"), prefix + "spec: expected an object, found a list")
        check(service("clusterIP: 198.18.0.1\nports: {port: 80}"), prefix + "spec.ports: expected a list, found an object")
        check(service("clusterIP: 198.18.0.1\nports: [{port: 80.5}]"),
              prefix + "spec.ports[0].port: expected an integer, found a number (80.5)")
        check(service("clusterIP: 198.18.0.1\nports: [{port: true}]"),
              prefix + "spec.ports[0].port: expected an integer, found a boolean (true)")
    }

    func testNonStringLabel() {
        let yaml = """
            apiVersion: v1
            kind: Service
            metadata:
              name: web
              labels:
                tier: 3
            spec:
              clusterIP: 198.18.0.1
            """
        check(yaml, prefix + #"metadata.labels["tier"]: expected a string, found an integer (3)"#)
    }

    func testErrorMessageUsesTheSourceName() {
        var decoder = KubeObjectDecoder()
        let yaml = serviceYAML("web", namespace: "shop", spec: "clusterIP: 198.18.0.1\nports: [{port: 70000}]")
        XCTAssertThrowsError(try decoder.add(contents: yaml, source: "<stdin>")) { error in
            let inputError = error as? InputError
            XCTAssertEqual(inputError?.source, "<stdin>")
            XCTAssertEqual(inputError?.object, "Service shop/web")
            XCTAssertEqual(inputError?.field, "spec.ports[0].port")
            XCTAssertEqual(inputError?.problem, "70000 is not a valid port (1-65535)")
        }
    }
}
