import KubeObjects
import ServiceModel
import XCTest

/// Input formats: JSON lists, YAML streams, typed lists, syntax errors, other kinds.
final class DocumentTests: XCTestCase {
    func testJSONList() throws {
        let json = """
            {
              "apiVersion": "v1",
              "kind": "List",
              "items": [
                {
                  "apiVersion": "v1",
                  "kind": "Service",
                  "metadata": {"name": "web", "namespace": "shop"},
                  "spec": {
                    "type": "ClusterIP",
                    "clusterIP": "198.18.0.20",
                    "clusterIPs": ["198.18.0.20"],
                    "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]
                  },
                  "status": {"loadBalancer": {}}
                },
                {
                  "apiVersion": "discovery.k8s.io/v1",
                  "kind": "EndpointSlice",
                  "metadata": {"name": "web-x1", "namespace": "shop",
                               "labels": {"kubernetes.io/service-name": "web"}},
                  "addressType": "IPv4",
                  "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
                  "endpoints": [
                    {"addresses": ["198.19.1.2"], "conditions": {"ready": true}, "nodeName": "node-a"},
                    {"addresses": ["198.19.1.1"], "conditions": {"ready": false, "serving": true, "terminating": true}}
                  ]
                }
              ],
              "metadata": {"resourceVersion": ""}
            }
            """
        let decoded = try decode([("list.json", json)])
        XCTAssertEqual(decoded.notices, [])
        XCTAssertEqual(decoded.warnings, [])
        let web = try XCTUnwrap(decoded.service("web", namespace: "shop"))
        XCTAssertEqual(web.clusterIPs, [ip("198.18.0.20")])
        XCTAssertEqual(web.ports.count, 1)
        XCTAssertEqual(web.ports[0].name, "http")
        XCTAssertEqual(web.ports[0].port, 80)
        XCTAssertNil(web.ports[0].nodePort)
        XCTAssertEqual(web.ports[0].endpoints, [
            Endpoint(address: ip("198.19.1.1"), port: 8080, ready: false, serving: true, terminating: true),
            Endpoint(address: ip("198.19.1.2"), port: 8080, nodeName: "node-a"),
        ])
    }

    func testJSONTopLevelArrayAndBooleansStayBooleans() throws {
        let json = """
            [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"},
              "spec": {"clusterIP": "198.18.0.1", "ports": [{"port": 1}]}},
             {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
              "metadata": {"name": "a-1", "labels": {"kubernetes.io/service-name": "a"}},
              "addressType": "IPv4", "ports": [{"port": 1}],
              "endpoints": [{"addresses": ["198.19.0.1"], "conditions": {"ready": 1}}]}]
            """
        // `ready: 1` is a number, not a boolean: Kubernetes rejects it, and so do we.
        assertInputError(json, "test.yaml: document 1, items[1]: EndpointSlice default/a-1: endpoints[0].conditions.ready: expected a boolean, found an integer (1)")
    }

    func testYAMLStreamSkipsOtherKindsWithNotice() throws {
        let yaml = """
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: echo
              namespace: default
            spec:
              replicas: 2
            ---
            # a comment-only document, then an empty one
            ---
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: settings
            data:
              key: value
            ---
            apiVersion: v1
            kind: Namespace
            metadata:
              name: shop
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: echo
            spec:
              clusterIP: 198.18.0.5
              ports:
              - port: 80
                targetPort: 8080
            """
        let decoded = try decode([("stream.yaml", yaml)])
        XCTAssertEqual(decoded.notices.map(\.code), [.skippedKind, .skippedKind, .skippedKind])
        XCTAssertEqual(decoded.notices.map(\.object), [
            DiagnosticObject(kind: "Deployment", apiVersion: "apps/v1", namespace: "default", name: "echo", source: "stream.yaml",
                             document: "document 1"),
            DiagnosticObject(kind: "ConfigMap", apiVersion: "v1", name: "settings", source: "stream.yaml", document: "document 2"),
            DiagnosticObject(kind: "Namespace", apiVersion: "v1", name: "shop", source: "stream.yaml", document: "document 3"),
        ])
        XCTAssertEqual(decoded.map.services.map(\.name.description), ["default/echo"])
        let echo = try XCTUnwrap(decoded.service("echo"))
        XCTAssertEqual(echo.ports, [ServicePort(name: "", transport: .tcp, port: 80)])
    }

    func testListsInsideAStreamAndTypedLists() throws {
        let yaml = """
            apiVersion: v1
            kind: List
            items:
            - apiVersion: v1
              kind: Service
              metadata: {name: a}
              spec: {clusterIP: 198.18.0.1, ports: [{port: 80}]}
            ---
            apiVersion: v1
            kind: ServiceList
            items:
            - metadata: {name: b}
              spec: {clusterIP: 198.18.0.2, ports: [{port: 80}]}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSliceList
            items:
            - metadata: {name: b-1, labels: {kubernetes.io/service-name: b}}
              addressType: IPv4
              ports: [{port: 8080}]
              endpoints: [{addresses: [198.19.0.2]}]
            """
        let decoded = try decode(yaml)
        XCTAssertEqual(decoded.map.services.map(\.name.description), ["default/a", "default/b"])
        XCTAssertEqual(decoded.service("b")?.ports.first?.endpoints.map(\.address), [ip("198.19.0.2")])
    }

    func testEmptyInputs() throws {
        XCTAssertEqual(try decode("").map.services, [])
        XCTAssertEqual(try decode("  \n# nothing\n---\n").map.services, [])
        XCTAssertEqual(try decode(#"{"apiVersion": "v1", "kind": "List", "items": []}"#).map.services, [])
    }

    func testYAMLSyntaxErrorNamesTheLine() {
        let yaml = """
            apiVersion: v1
            kind: Service
            metadata:
              name: web
               namespace: broken
            """
        var decoder = KubeObjectDecoder()
        XCTAssertThrowsError(try decoder.add(contents: yaml, source: "bad.yaml")) { error in
            let message = (error as? InputError)?.description ?? ""
            XCTAssertTrue(message.hasPrefix("bad.yaml: invalid YAML: line 5, column "), message)
            XCTAssertFalse(message.contains("\n"), message)
        }
    }

    func testJSONSyntaxErrorNamesTheLine() {
        let json = """
            {
              "apiVersion": "v1",
              "kind": "Service",,
            }
            """
        var decoder = KubeObjectDecoder()
        XCTAssertThrowsError(try decoder.add(contents: json, source: "bad.json")) { error in
            let message = (error as? InputError)?.description ?? ""
            XCTAssertTrue(message.hasPrefix("bad.json: invalid JSON: line 3, column "), message)
        }
    }

    func testObjectWithoutKindOrAPIVersion() {
        assertInputError("metadata:\n  name: x\n", "test.yaml: document 1: kind: missing (not a Kubernetes object)")
        assertInputError("kind: Service\nmetadata:\n  name: x\n", "test.yaml: document 1: Service: apiVersion: missing")
        assertInputError("apiVersion: v1\nkind: List\nitems:\n- metadata: {name: x}\n",
                         "test.yaml: document 1, items[0]: kind: missing (not a Kubernetes object)")
        assertInputError(stream("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}", "- 1\n- 2"),
                         "test.yaml: document 2: expected a Kubernetes object, found a list")
    }

    func testMissingName() {
        assertInputError("apiVersion: v1\nkind: Service\nmetadata:\n  namespace: shop\nspec: {}\n",
                         "test.yaml: document 1: Service: metadata.name: missing")
        assertInputError(stream("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}",
                                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: \"\"}"),
                         "test.yaml: document 2: EndpointSlice: metadata.name: must not be empty")
    }

    func testQuotedPortIsRejected() {
        let yaml = serviceYAML("web", spec: """
            clusterIP: 198.18.0.1
            ports:
            - port: "80"
            """)
        assertInputError(yaml, #"test.yaml: document 1: Service default/web: spec.ports[0].port: expected an integer, found a string ("80")"#)
    }

    func testAnErrorKeepsNothingOfThatInput() throws {
        var decoder = KubeObjectDecoder()
        let good = serviceYAML("a", spec: "clusterIP: 198.18.0.1\nports: [{port: 80}]")
        let bad = serviceYAML("b", spec: "clusterIP: 198.18.0.2\nports: [{port: 0}]")
        try decoder.add(contents: good, source: "a.yaml")
        XCTAssertThrowsError(try decoder.add(contents: stream(serviceYAML("c", spec: "clusterIP: 198.18.0.3"), bad),
                                             source: "b.yaml"))
        let (map, _) = try decoder.serviceMap()
        XCTAssertEqual(map.services.map(\.name.name), ["a"])
    }

    func testNamespaceDefaultsAndYAMLAnchors() throws {
        let yaml = """
            apiVersion: v1
            kind: Service
            metadata:
              name: web
            spec:
              clusterIP: 198.18.0.7
              ports:
              - &http {name: http, port: 80, protocol: TCP}
              - <<: *http
                name: http-alt
                port: 8080
            """
        let web = try XCTUnwrap(try decode(yaml).service("web", namespace: "default"))
        XCTAssertEqual(web.ports.map(\.name), ["http", "http-alt"])
        XCTAssertEqual(web.ports.map(\.port), [80, 8080])
    }
}
