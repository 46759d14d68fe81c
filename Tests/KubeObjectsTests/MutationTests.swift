import Foundation
import KubeObjects
import ServiceModel
import XCTest

/// Seeded random mutations of real objects (field types and values changed, bytes replaced,
/// lines repeated, input cut short): every outcome is a ServiceMap or an InputError.
final class MutationTests: XCTestCase {
    /// A Service and its EndpointSlice as `kubectl get -o json` prints them, with the fields
    /// nftproxy skips (managedFields, ownerReferences, targetRef, last-applied annotation).
    static let kubectlJSON = #"""
        {
            "apiVersion": "v1",
            "items": [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "annotations": {
                            "kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"annotations\":{},\"name\":\"web\",\"namespace\":\"shop\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080}],\"selector\":{\"app\":\"web\"}}}\n"
                        },
                        "creationTimestamp": "2024-05-01T10:00:00Z",
                        "labels": {"app": "web"},
                        "managedFields": [
                            {
                                "apiVersion": "v1",
                                "fieldsType": "FieldsV1",
                                "fieldsV1": {"f:spec": {"f:ports": {".": {}, "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}}}},
                                "manager": "kubectl-client-side-apply",
                                "operation": "Update",
                                "time": "2024-05-01T10:00:00Z"
                            }
                        ],
                        "name": "web",
                        "namespace": "shop",
                        "resourceVersion": "1234",
                        "uid": "6f1d2c3b-0a9e-4c1f-9b7e-2d3c4b5a6f70"
                    },
                    "spec": {
                        "clusterIP": "10.96.0.20",
                        "clusterIPs": ["10.96.0.20"],
                        "internalTrafficPolicy": "Cluster",
                        "ipFamilies": ["IPv4"],
                        "ipFamilyPolicy": "SingleStack",
                        "ports": [{"name": "http", "nodePort": 30080, "port": 80, "protocol": "TCP", "targetPort": 8080}],
                        "selector": {"app": "web"},
                        "sessionAffinity": "None",
                        "type": "NodePort"
                    },
                    "status": {"loadBalancer": {}}
                },
                {
                    "addressType": "IPv4",
                    "apiVersion": "discovery.k8s.io/v1",
                    "endpoints": [
                        {
                            "addresses": ["10.244.1.5"],
                            "conditions": {"ready": true, "serving": true, "terminating": false},
                            "nodeName": "node-1",
                            "targetRef": {"kind": "Pod", "name": "web-7d9f8b6c5d-abcde", "namespace": "shop", "uid": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"},
                            "zone": "zone-a"
                        }
                    ],
                    "kind": "EndpointSlice",
                    "metadata": {
                        "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2024-05-01T10:00:05Z"},
                        "generateName": "web-",
                        "generation": 3,
                        "labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io", "kubernetes.io/service-name": "web"},
                        "name": "web-x1y2z",
                        "namespace": "shop",
                        "ownerReferences": [{"apiVersion": "v1", "blockOwnerDeletion": true, "controller": true, "kind": "Service", "name": "web", "uid": "6f1d2c3b-0a9e-4c1f-9b7e-2d3c4b5a6f70"}]
                    },
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
                }
            ],
            "kind": "List",
            "metadata": {"resourceVersion": ""}
        }
        """#

    /// The same List as `kubectl get -o yaml` prints it (shortened).
    static let kubectlYAML = """
        apiVersion: v1
        items:
        - apiVersion: v1
          kind: Service
          metadata:
            annotations:
              kubectl.kubernetes.io/last-applied-configuration: |
                {"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop"}}
            labels:
              app: web
            managedFields:
            - apiVersion: v1
              fieldsType: FieldsV1
              fieldsV1:
                f:spec:
                  f:ports:
                    .: {}
              manager: kubectl-client-side-apply
              operation: Update
            name: web
            namespace: shop
            uid: 6f1d2c3b-0a9e-4c1f-9b7e-2d3c4b5a6f70
          spec:
            clusterIP: 10.96.0.20
            clusterIPs:
            - 10.96.0.20
            ports:
            - name: http
              nodePort: 30080
              port: 80
              protocol: TCP
              targetPort: 8080
            type: NodePort
          status:
            loadBalancer: {}
        - addressType: IPv4
          apiVersion: discovery.k8s.io/v1
          endpoints:
          - addresses:
            - 10.244.1.5
            conditions:
              ready: true
              serving: true
              terminating: false
            nodeName: node-1
            targetRef:
              kind: Pod
              name: web-7d9f8b6c5d-abcde
            zone: zone-a
          kind: EndpointSlice
          metadata:
            labels:
              kubernetes.io/service-name: web
            name: web-x1y2z
            namespace: shop
            ownerReferences:
            - apiVersion: v1
              kind: Service
              name: web
          ports:
          - name: http
            port: 8080
            protocol: TCP
        kind: List
        metadata:
          resourceVersion: ""
        """

    /// SplitMix64: a small seeded generator, the same on every platform.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    private static let replacementValues = [
        #""80""#, "80.5", "18446744073709551616", "-9223372036854775809", "-1", "0", "null", "true", "[]", "{}",
        #"{"a": [1, 2]}"#, "0x50", "1e400", #""\ud800""#, #""""#, "!!int ++80", "*a", "&a [1]", "1:20", "~",
        "[[[[[[[[", "9" + String(repeating: "9", count: 40),
    ]
    private static let replacementBytes: [UInt8] = Array(#"{}[]":,-&*!#|>'\ 0123456789aZ"#.utf8) + [0x0A, 0x09, 0x00, 0xFF, 0xC3, 0x80]

    /// One mutation of `input`.
    private func mutate(_ input: [UInt8], using random: inout Generator) -> [UInt8] {
        var bytes = input
        switch Int.random(in: 0..<4, using: &random) {
        case 0:  // cut short
            bytes.removeSubrange(Int.random(in: 0..<bytes.count, using: &random)...)
        case 1:  // one byte replaced
            bytes[Int.random(in: 0..<bytes.count, using: &random)] = Self.replacementBytes.randomElement(using: &random) ?? 0
        case 2:  // the value after a ": " replaced by one of another type
            let separators = bytes.indices.dropLast().filter { bytes[$0] == UInt8(ascii: ":") && bytes[$0 + 1] == UInt8(ascii: " ") }
            guard let colon = separators.randomElement(using: &random) else { break }
            let start = colon + 2
            var end = start
            while end < bytes.count, ![UInt8(ascii: ","), UInt8(ascii: "\n"), UInt8(ascii: "}")].contains(bytes[end]) { end += 1 }
            bytes.replaceSubrange(start..<end, with: Array((Self.replacementValues.randomElement(using: &random) ?? "").utf8))
        default:  // a line repeated
            let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            let index = Int.random(in: 0..<lines.count, using: &random)
            var joined: [UInt8] = []
            for (number, line) in lines.enumerated() {
                joined += line + [UInt8(ascii: "\n")]
                if number == index { joined += line + [UInt8(ascii: "\n")] }
            }
            bytes = joined
        }
        return bytes
    }

    /// The outcome of decoding, as text: the services, or the error.
    private func outcome(_ bytes: [UInt8], source: String) -> String {
        var decoder = KubeObjectDecoder()
        let result = Result { () throws(InputError) -> ServiceMap in
            try decoder.add(bytes: bytes, source: source)
            return try decoder.serviceMap().0
        }
        switch result {
        case .success(let map): return "ok: \(map.services.map(\.name.description))"
        case .failure(let error): return "error: \(error)"
        }
    }

    private func run(_ input: String, source: String, seed: UInt64, rounds: Int) -> [String] {
        var random = Generator(state: seed)
        let original = Array(input.utf8)
        var outcomes: [String] = []
        for _ in 0..<rounds {
            var bytes = original
            for _ in 0..<Int.random(in: 1...3, using: &random) { bytes = mutate(bytes, using: &random) }
            outcomes.append(outcome(bytes, source: source))
        }
        return outcomes
    }

    /// A YAML List whose items are decoded while it is parsed and the same List followed by an
    /// empty document (read again whole) give the same outcome.
    func testStreamedYAMLListsDecodeAsWholeOnes() {
        var random = Generator(state: 0xCAFE)
        let original = Array(Self.kubectlYAML.utf8)
        var compared = 0
        for _ in 0..<300 {
            let bytes = mutate(original, using: &random)
            let streamed = outcome(bytes, source: "list.yaml")
            guard streamed.hasPrefix("ok: ") || streamed.contains(": Service ") || streamed.contains(": EndpointSlice ") else {
                continue  // syntax errors: the appended document could change them
            }
            XCTAssertEqual(outcome(bytes + Array("\n---\n".utf8), source: "list.yaml"), streamed)
            compared += 1
        }
        XCTAssertGreaterThan(compared, 100)
    }

    private func example() throws -> String {
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return try String(contentsOf: root.appendingPathComponent("examples/echo-server.yaml"), encoding: .utf8)
    }

    func testOriginalsDecode() throws {
        XCTAssertEqual(outcome(Array(Self.kubectlJSON.utf8), source: "list.json"), #"ok: ["shop/web"]"#)
        XCTAssertEqual(outcome(Array(try example().utf8), source: "echo.yaml"), #"ok: ["default/echo-server"]"#)
        XCTAssertEqual(outcome(Array(Self.kubectlYAML.utf8), source: "list.yaml"), #"ok: ["shop/web"]"#)
    }

    func testMutatedObjectsDecodeOrFailWithAnInputError() throws {
        for (input, source) in [(Self.kubectlJSON, "list.json"), (Self.kubectlYAML, "list.yaml"), (try example(), "echo.yaml")] {
            let outcomes = run(input, source: source, seed: 0x5EED, rounds: 600)
            // Both kinds of outcome occur, and the same seed gives the same outcomes.
            XCTAssertGreaterThan(outcomes.filter { $0.hasPrefix("ok: ") }.count, 20, source)
            XCTAssertGreaterThan(outcomes.filter { $0.hasPrefix("error: \(source): ") }.count, 100, source)
            XCTAssertEqual(outcomes.filter { !$0.hasPrefix("ok: ") && !$0.hasPrefix("error: \(source): ") }, [])
            XCTAssertEqual(run(input, source: source, seed: 0x5EED, rounds: 50), Array(outcomes.prefix(50)), source)
            // No message carries a line break or echoes a long literal whole.
            XCTAssertEqual(outcomes.filter { $0.contains("\n") || $0.contains(String(repeating: "9", count: 41)) }, [])
        }
    }
}
