import KubeObjects
import XCTest

/// Every refusal names the source and the document (with the List item), and where there
/// is one the object and the field.
final class MessageLocationTests: XCTestCase {
    func testAScalarDocumentIsNamedByItsPosition() {
        assertInputError("hello\n", #"test.yaml: document 1: expected a Kubernetes object, found a string ("hello")"#)
        assertInputError("kind: Service\napiVersion: v1\nmetadata: {name: a}\nspec: {clusterIP: 198.18.0.1, ports: [{port: 80}]}\n---\n42\n",
                         "test.yaml: document 2: expected a Kubernetes object, found an integer (42)")
    }

    func testAMissingKindIsNamedByDocumentAndItem() {
        assertInputError("a: 1\n---\nb: 2\n", "test.yaml: document 1: kind: missing (not a Kubernetes object)")
        assertInputError(#"{"apiVersion": "v1", "kind": "List", "items": [{"kind": "Service", "apiVersion": "v1", "metadata": {"name": "a"}, "spec": {"clusterIP": "198.18.0.1", "ports": [{"port": 80}]}}, {"metadata": {}}]}"#,
                         "list.json: document 1, items[1]: kind: missing (not a Kubernetes object)", source: "list.json")
        assertInputError(#"[1]"#, "list.json: document 1, items[0]: expected a Kubernetes object, found an integer (1)", source: "list.json")
    }

    func testANamedObjectInAStreamNamesDocumentObjectAndField() {
        let yaml = serviceYAML("a", spec: "clusterIP: 198.18.0.1\nports: [{port: 80}]") + "\n---\n"
            + serviceYAML("b", spec: "clusterIP: 198.18.0.2\nports: [{port: 80, protocol: tcp}]")
        assertInputError(yaml, #"test.yaml: document 2: Service default/b: spec.ports[0].protocol: unknown protocol "tcp" (expected TCP, UDP or SCTP)"#)
    }
}
