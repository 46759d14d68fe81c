import KubeObjects
import ServiceModel
import XCTest

/// Result of decoding a set of inputs.
struct Decoded {
    var map: ServiceMap
    var warnings: [Diagnostic]
    var notices: [Diagnostic]

    func service(_ name: String, namespace: String = "default") -> Service? {
        map.services.first { $0.name == ServiceName(namespace: namespace, name: name) }
    }
}

/// Decodes `inputs` (source name, contents) in order.
func decode(_ inputs: [(String, String)], file: StaticString = #filePath, line: UInt = #line) throws -> Decoded {
    var decoder = KubeObjectDecoder()
    for (source, contents) in inputs {
        try decoder.add(contents: contents, source: source)
    }
    let (map, warnings) = try decoder.serviceMap()
    return Decoded(map: map, warnings: warnings, notices: decoder.notices)
}

/// Decodes one YAML or JSON input named `test.yaml`.
func decode(_ contents: String) throws -> Decoded {
    try decode([("test.yaml", contents)])
}

/// Asserts that adding `contents` fails with exactly `message`.
func assertInputError(_ contents: String, _ message: String, source: String = "test.yaml",
                      file: StaticString = #filePath, line: UInt = #line) {
    var decoder = KubeObjectDecoder()
    do {
        try decoder.add(contents: contents, source: source)
        XCTFail("expected error: \(message)", file: file, line: line)
    } catch {
        XCTAssertEqual(error.description, message, file: file, line: line)
    }
}

func ip(_ text: String) -> IPAddress {
    guard let address = IPAddress(text) else { preconditionFailure("bad test address \(text)") }
    return address
}

/// A Service manifest (YAML). `spec` lines are indented under `spec:` as given.
func serviceYAML(_ name: String, namespace: String = "default", labels: [String: String] = [:],
                 spec: String, status: String = "") -> String {
    var text = """
        apiVersion: v1
        kind: Service
        metadata:
          name: \(name)
          namespace: \(namespace)

        """
    if !labels.isEmpty {
        text += "  labels:\n"
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            text += "    \(key): \"\(value)\"\n"
        }
    }
    text += "spec:\n" + indent(spec, by: 2)
    if !status.isEmpty { text += "status:\n" + indent(status, by: 2) }
    return text
}

/// An EndpointSlice manifest (YAML); `body` holds addressType, ports and endpoints.
func sliceYAML(_ name: String, service: String, namespace: String = "default", body: String) -> String {
    """
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: \(name)
      namespace: \(namespace)
      labels:
        kubernetes.io/service-name: \(service)

    """ + body
}

/// Joins manifests into one multi-document YAML stream.
func stream(_ documents: String...) -> String {
    documents.map { $0.hasSuffix("\n") ? $0 : $0 + "\n" }.joined(separator: "---\n")
}

private func indent(_ text: String, by count: Int) -> String {
    let pad = String(repeating: " ", count: count)
    return text.split(separator: "\n", omittingEmptySubsequences: false)
        .map { $0.isEmpty ? "" : pad + $0 }
        .joined(separator: "\n") + (text.hasSuffix("\n") ? "" : "\n")
}
