import KubeObjects
import ServiceModel
import ServiceTestSupport
import XCTest

/// Service fields, defaults and the services the proxy skips.
final class ServiceTests: XCTestCase {
    func testMultiPortLoadBalancerWithEverything() throws {
        let yaml = serviceYAML("shop", namespace: "prod", spec: """
            type: LoadBalancer
            clusterIP: 198.18.0.30
            clusterIPs: [198.18.0.30, "2001:db8::30"]
            externalIPs: [192.0.2.30]
            externalTrafficPolicy: Local
            internalTrafficPolicy: Local
            sessionAffinity: ClientIP
            sessionAffinityConfig:
              clientIP:
                timeoutSeconds: 600
            loadBalancerSourceRanges: [203.0.113.0/24, "2001:db8:1::/48"]
            ports:
            - name: http
              port: 80
              targetPort: web
              nodePort: 30080
            - name: https
              port: 443
              targetPort: 8443
              nodePort: 30443
            - name: dns
              protocol: UDP
              port: 53
              nodePort: 30053
            - name: sig
              protocol: SCTP
              port: 9000
            """, status: """
            loadBalancer:
              ingress:
              - ip: 203.0.113.30
              - hostname: lb.example
              - ip: 203.0.113.31
                ipMode: Proxy
              - ip: "2001:db8::1:30"
                ipMode: VIP
            """)
        let decoded = try decode(yaml)
        XCTAssertEqual(decoded.notices, [])
        let shop = try XCTUnwrap(decoded.service("shop", namespace: "prod"))
        XCTAssertEqual(shop, Service(
            name: ServiceName(namespace: "prod", name: "shop"),
            clusterIPs: [ip("198.18.0.30"), ip("2001:db8::30")],
            externalIPs: [ip("192.0.2.30")],
            loadBalancerIPs: [ip("203.0.113.30"), ip("2001:db8::1:30")],
            ports: [
                ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 30080),
                ServicePort(name: "https", transport: .tcp, port: 443, nodePort: 30443),
                ServicePort(name: "dns", transport: .udp, port: 53, nodePort: 30053),
                ServicePort(name: "sig", transport: .sctp, port: 9000),
            ],
            externalTrafficPolicy: .local, internalTrafficPolicy: .local,
            sessionAffinityTimeout: 600,
            loadBalancerSourceRanges: [CIDR("203.0.113.0/24")!, CIDR("2001:db8:1::/48")!]))
    }

    func testDefaults() throws {
        let yaml = serviceYAML("plain", spec: """
            clusterIP: 198.18.0.1
            externalTrafficPolicy: Local
            ports:
            - port: 80
            """)
        let plain = try XCTUnwrap(try decode(yaml).service("plain"))
        XCTAssertEqual(plain.ports, [ServicePort(name: "", transport: .tcp, port: 80)])
        XCTAssertEqual(plain.externalTrafficPolicy, .cluster, "Local only applies to externally reachable services")
        XCTAssertEqual(plain.internalTrafficPolicy, .cluster)
        XCTAssertNil(plain.sessionAffinityTimeout)
        XCTAssertEqual(plain.externalIPs, [])
        XCTAssertEqual(plain.loadBalancerIPs, [])
        XCTAssertEqual(plain.loadBalancerSourceRanges, [])
    }

    func testClientIPAffinityDefaultTimeout() throws {
        let yaml = serviceYAML("sticky", spec: "clusterIP: 198.18.0.1\nsessionAffinity: ClientIP\nports: [{port: 80}]")
        XCTAssertEqual(try decode(yaml).service("sticky")?.sessionAffinityTimeout, 10800)
    }

    func testExternalTrafficPolicyLocalWithExternalIPsOnClusterIPService() throws {
        let yaml = serviceYAML("ext", spec: """
            clusterIP: 198.18.0.1
            externalIPs: [192.0.2.1]
            externalTrafficPolicy: Local
            ports: [{port: 80}]
            """)
        XCTAssertEqual(try decode(yaml).service("ext")?.externalTrafficPolicy, .local)
    }

    func testHealthCheckNodePort() throws {
        let yaml = serviceYAML("lb", spec: """
            type: LoadBalancer
            clusterIP: 198.18.0.1
            externalTrafficPolicy: Local
            healthCheckNodePort: 32100
            ports: [{port: 80, nodePort: 30080}]
            """) + "---\n" + serviceYAML("unset", spec: """
            type: LoadBalancer
            clusterIP: 198.18.0.2
            externalTrafficPolicy: Local
            healthCheckNodePort: 0
            ports: [{port: 80}]
            """)
        let decoded = try decode(yaml)
        XCTAssertEqual(decoded.service("lb")?.healthCheckNodePort, 32100)
        XCTAssertNil(try XCTUnwrap(decoded.service("unset")).healthCheckNodePort, "0 means not set, as in Kubernetes")
    }

    func testSourceRangesFromAnnotation() throws {
        let yaml = """
            apiVersion: v1
            kind: Service
            metadata:
              name: lb
              annotations:
                service.beta.kubernetes.io/load-balancer-source-ranges: "203.0.113.0/25, 198.51.100.0/24"
            spec:
              type: LoadBalancer
              clusterIP: 198.18.0.1
              ports: [{port: 80, nodePort: 30001}]
            """
        XCTAssertEqual(try decode(yaml).service("lb")?.loadBalancerSourceRanges,
                       [CIDR("203.0.113.0/25")!, CIDR("198.51.100.0/24")!])
    }

    func testSkippedServices() throws {
        let yaml = stream(
            serviceYAML("headless", spec: "clusterIP: None\nclusterIPs: [None]\nports: [{port: 80}]"),
            serviceYAML("external", spec: "type: ExternalName\nexternalName: db.example"),
            serviceYAML("other-proxy", labels: ["service.kubernetes.io/service-proxy-name": "foo"],
                        spec: "clusterIP: 198.18.0.2\nports: [{port: 80}]"),
            serviceYAML("empty-proxy-label", labels: ["service.kubernetes.io/service-proxy-name": ""],
                        spec: "clusterIP: 198.18.0.3\nports: [{port: 80}]"),
            serviceYAML("headless-label", labels: ["service.kubernetes.io/headless": ""],
                        spec: "clusterIP: 198.18.0.4\nports: [{port: 80}]"),
            serviceYAML("unallocated", spec: "ports: [{port: 80}]"),
            serviceYAML("served", spec: "clusterIP: 198.18.0.9\nports: [{port: 80}]"),
            sliceYAML("headless-1", service: "headless", body: """
                addressType: IPv4
                ports: [{port: 80}]
                endpoints: [{addresses: [198.19.0.1]}]
                """))
        let decoded = try decode(yaml)
        XCTAssertEqual(decoded.map.services.map(\.name.name), ["served"])
        func skipped(_ name: String, _ document: Int, _ code: Diagnostic.Code, _ field: String) -> Finding {
            Finding(.notice, code, .service(ServiceName(namespace: "default", name: name), source: "test.yaml",
                                            document: "document \(document)"), field: field)
        }
        XCTAssertEqual(decoded.notices.findings, [
            skipped("headless", 1, .headlessService, "spec.clusterIP"),
            skipped("external", 2, .externalNameService, "spec.type"),
            skipped("other-proxy", 3, .serviceProxyName, #"metadata.labels["service.kubernetes.io/service-proxy-name"]"#),
            skipped("empty-proxy-label", 4, .serviceProxyName, #"metadata.labels["service.kubernetes.io/service-proxy-name"]"#),
            skipped("headless-label", 5, .headlessService, #"metadata.labels["service.kubernetes.io/headless"]"#),
            skipped("unallocated", 6, .noClusterIP, "spec.clusterIP"),
        ])
        XCTAssertEqual(decoded.warnings, [])
    }

    /// `--service-proxy-name NAME`: only the Services labelled with NAME are served; the
    /// unlabelled ones belong to the default proxy, the others to theirs.
    func testServiceProxyNameSelectsTheServicesLabelledWithIt() throws {
        let yaml = stream(
            serviceYAML("ours", labels: ["service.kubernetes.io/service-proxy-name": "nftproxy"],
                        spec: "clusterIP: 198.18.0.2\nports: [{port: 80}]"),
            serviceYAML("theirs", labels: ["service.kubernetes.io/service-proxy-name": "other"],
                        spec: "clusterIP: 198.18.0.3\nports: [{port: 80}]"),
            serviceYAML("default", spec: "clusterIP: 198.18.0.4\nports: [{port: 80}]"))
        var decoder = KubeObjectDecoder(serviceProxyName: "nftproxy")
        try decoder.add(contents: yaml, source: "test.yaml")
        XCTAssertEqual(try decoder.serviceMap().0.services.map(\.name.name), ["ours"])
        XCTAssertEqual(decoder.notices.map(\.code), [.serviceProxyName, .serviceProxyName])
        XCTAssertEqual(decoder.notices.map(\.object.name), ["theirs", "default"])
        XCTAssertEqual(decoder.notices.map(\.field), Array(repeating: #"metadata.labels["service.kubernetes.io/service-proxy-name"]"#,
                                                             count: 2))
        XCTAssertEqual(try decode(yaml).map.services.map(\.name.name), ["default"], "without a name: the unlabelled ones")

        // The items of a List are decoded while it is parsed: the name applies there too.
        let list = """
            {"apiVersion": "v1", "kind": "List", "items": [
              {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ours", "namespace": "default",
               "labels": {"service.kubernetes.io/service-proxy-name": "nftproxy"}},
               "spec": {"clusterIP": "198.18.0.2", "ports": [{"port": 80}]}},
              {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "default", "namespace": "default"},
               "spec": {"clusterIP": "198.18.0.4", "ports": [{"port": 80}]}}]}
            """
        var listDecoder = KubeObjectDecoder(serviceProxyName: "nftproxy")
        try listDecoder.add(contents: list, source: "list.json")
        XCTAssertEqual(try listDecoder.serviceMap().0.services.map(\.name.name), ["ours"])

        // An API list item (no kind): the daemon's path.
        let item = Array("""
            {"metadata": {"name": "ours", "namespace": "default", "labels": {"service.kubernetes.io/service-proxy-name": "nftproxy"}},
             "spec": {"clusterIP": "198.18.0.2", "ports": [{"port": 80}]}}
            """.utf8)
        let served = try KubeObjectDecoder.decodeObject(bytes: item, source: "API", apiVersion: "v1", kind: "Service",
                                                        serviceProxyName: "nftproxy")
        let skipped = try KubeObjectDecoder.decodeObject(bytes: item, source: "API", apiVersion: "v1", kind: "Service")
        guard case .service(_, let service)? = served.objects.first, case .service(_, let none)? = skipped.objects.first else {
            return XCTFail("no service decoded: \(served.objects) \(skipped.objects)")
        }
        XCTAssertNotNil(service, "labelled with our name: served")
        XCTAssertNil(none, "labelled, no name given: skipped")
    }

    func testSkippedServiceIsNotValidatedFurther() throws {
        // ExternalName services carry no ports to check.
        let yaml = serviceYAML("external", spec: "type: ExternalName\nexternalName: db.example\nports: [{port: 99999}]")
        XCTAssertEqual(try decode(yaml).map.services, [])
    }
}
