import KubeObjects
import ServiceModel
import ServiceTestSupport
import XCTest

/// The items of a List (JSON, or the first YAML document) are decoded while it is parsed; the
/// outcome is the same as if the List had been parsed whole.
final class StreamedListTests: XCTestCase {
    private let badService = #"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"clusterIP": "198.18.0.1", "ports": [{"port": 0}]}}"#

    func testASyntaxErrorAfterABadItemIsReported() {
        assertInputError(#"{"apiVersion": "v1", "items": [\#(badService)], "kind": "List",, }"#,
                         "test.json: invalid JSON: line 1, column 177: expected a string key, found ','", source: "test.json")
        assertInputError(#"{"apiVersion": "v1", "items": [\#(badService)], "kind": "List"}"#,
                         "test.json: document 1, items[0]: Service default/a: spec.ports[0].port: 0 is not a valid port (1-65535)", source: "test.json")
    }

    func testTheListItselfIsCheckedFirst() {
        assertInputError(#"{"items": [\#(badService)], "kind": "List"}"#, "test.json: document 1: List: apiVersion: missing", source: "test.json")
    }

    func testItemsOfAnObjectThatIsNoListAreNotRead() throws {
        let decoded = try decode([("test.json", #"{"apiVersion": "v1", "items": [\#(badService)], "kind": "ConfigMap", "metadata": {"name": "c"}}"#)])
        XCTAssertEqual(decoded.notices.findings, [Finding(.notice, .skippedKind, DiagnosticObject(
            kind: "ConfigMap", apiVersion: "v1", name: "c", source: "test.json", document: "document 1"))])
    }

    func testYAMLListsAndAListFollowedByMoreDocuments() throws {
        let list = """
            apiVersion: v1
            kind: List
            items:
            - apiVersion: apps/v1
              kind: Deployment
              metadata: {name: d1}
            - apiVersion: v1
              kind: Service
              metadata: {name: s}
              spec: {clusterIP: 198.18.0.2, ports: [{port: 80}]}
            """
        let one = try decode(list)
        let d1 = Finding(.notice, .skippedKind, DiagnosticObject(kind: "Deployment", apiVersion: "apps/v1", name: "d1",
                                                                 source: "test.yaml", document: "document 1, items[0]"))
        XCTAssertEqual(one.notices.findings, [d1])
        XCTAssertEqual(one.map.services.map(\.name.name), ["s"])
        // A second document: the stream is read again, whole, and items are named by document.
        let two = try decode(stream(list, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}"))
        XCTAssertEqual(two.notices.findings, [d1, Finding(.notice, .skippedKind, DiagnosticObject(
            kind: "ConfigMap", apiVersion: "v1", name: "c", source: "test.yaml", document: "document 2"))])
        XCTAssertEqual(two.map.services.map(\.name.name), ["s"])
        assertInputError(stream(list.replacingOccurrences(of: "port: 80", with: "port: 0"), "kind: ConfigMap"),
                         "test.yaml: document 1, items[1]: Service default/s: spec.ports[0].port: 0 is not a valid port (1-65535)")
        // A syntax error after a bad item: the syntax error is reported.
        assertInputError(list.replacingOccurrences(of: "port: 80", with: "port: 0") + "\n- {a: [}",
                         "test.yaml: invalid YAML: line 11, column 8: did not find expected node content (while parsing a flow node at line 11, column 8)")
    }

    func testTypedListItemsWithoutKindKeepTheirOrder() throws {
        let list = """
            {"apiVersion": "v1", "kind": "ServiceList", "items": [
              {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d1"}},
              {"metadata": {"name": "s"}, "spec": {"clusterIP": "198.18.0.2", "ports": [{"port": 80}]}},
              {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d2"}},
              {"metadata": {"name": "x"}, "spec": {"type": "ExternalName"}}
            ]}
            """
        let decoded = try decode([("test.json", list)])
        func deployment(_ name: String, _ item: Int) -> Finding {
            Finding(.notice, .skippedKind, DiagnosticObject(kind: "Deployment", apiVersion: "apps/v1", name: name,
                                                            source: "test.json", document: "document 1, items[\(item)]"))
        }
        XCTAssertEqual(decoded.notices.findings, [
            deployment("d1", 0), deployment("d2", 2),
            Finding(.notice, .externalNameService, .service(ServiceName(namespace: "default", name: "x"), source: "test.json",
                                                            document: "document 1, items[3]"), field: "spec.type"),
        ])
        XCTAssertEqual(decoded.map.services.map(\.name.name), ["s"])
    }
}
