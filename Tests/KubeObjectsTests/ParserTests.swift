import KubeObjects
import ServiceModel
import XCTest

/// The JSON and YAML readers: syntax errors with line and column, duplicate keys, integer
/// forms and ranges, flow-style YAML, and what is skipped.
final class ParserTests: XCTestCase {
    /// A Service whose first port is `port` written as given (JSON).
    private func jsonService(port: String) -> String {
        #"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"clusterIP": "198.18.0.1", "ports": [{"port": \#(port)}]}}"#
    }

    /// The same Service in YAML.
    private func yamlService(port: String) -> String {
        serviceYAML("web", spec: "clusterIP: 198.18.0.1\nports:\n- port: \(port)\n")
    }

    private func decodedPort(_ text: String) throws -> UInt16? {
        try decode(text).service("web")?.ports.first?.port
    }

    // MARK: JSON

    func testJSONSyntaxErrorsCarryLineAndColumn() {
        assertInputError("{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Service\",,\n}",
                         "test.json: invalid JSON: line 3, column 21: expected a string key, found ','", source: "test.json")
        assertInputError(#"{"apiVersion": "v1", "kind": "Serv"#,
                         "test.json: invalid JSON: line 1, column 30: unterminated string", source: "test.json")
        assertInputError(#"{"apiVersion": "v1", "kind": "#,
                         "test.json: invalid JSON: line 1, column 30: expected a value, found end of input", source: "test.json")
        assertInputError("{\"kind\": \"a\u{01}b\"}",
                         "test.json: invalid JSON: line 1, column 12: control character U+0001 in a string (must be escaped)",
                         source: "test.json")
        assertInputError(#"{"kind": "\x"}"#,
                         "test.json: invalid JSON: line 1, column 11: invalid escape sequence in a string", source: "test.json")
        assertInputError(#"{"kind": "\ud800"}"#,
                         #"test.json: invalid JSON: line 1, column 11: invalid \u escape: a lone surrogate"#, source: "test.json")
        assertInputError(#"{"kind": tru]"#,
                         "test.json: invalid JSON: line 1, column 10: invalid literal (expected true)", source: "test.json")
        assertInputError(#"{"a": 1} {"b": 2}"#,
                         "test.json: invalid JSON: line 1, column 10: unexpected '{' after the end of the document",
                         source: "test.json")
    }

    /// Strings are scanned eight bytes at a time where they are plain text: a quote, an
    /// escape, a control character or a non-ASCII byte at any offset is still found where it is.
    func testJSONStringsAtEveryOffset() throws {
        for offset in 0..<20 {
            let plain = String(repeating: "k", count: offset)
            // `{"kind": "` is 10 characters: the string's content starts in column 11.
            assertInputError("{\"kind\": \"\(plain)\u{01}\(plain)\"}",
                             "test.json: invalid JSON: line 1, column \(11 + offset): control character U+0001 in a string (must be escaped)",
                             source: "test.json")
            var decoder = KubeObjectDecoder()
            XCTAssertThrowsError(try decoder.add(bytes: Array("{\"kind\": \"\(plain)".utf8) + [0xC3, 0x28] + Array("\"}".utf8),
                                                 source: "test.json")) { error in
                XCTAssertEqual("\(error)", "test.json: invalid JSON: line 1, column \(11 + offset): invalid UTF-8")
            }
            // After an escape, in a skipped member.
            assertInputError("{\"junk\": \"\\n\(plain)\u{1F}\"}",
                             "test.json: invalid JSON: line 1, column \(13 + offset): control character U+001F in a string (must be escaped)",
                             source: "test.json")
            // Escapes, quotes and non-ASCII text at every offset are decoded as written.
            let kind = plain + "\\\"é\\u00e9" + plain
            let decoded = try decode([("test.json", "{\"apiVersion\": \"v1\", \"kind\": \"\(kind)\", \"metadata\": {\"name\": \"x\"}}")])
            XCTAssertEqual(decoded.notices.map(\.message), ["test.json: skipping v1 \(plain)\"éé\(plain) x (not a Service or EndpointSlice)"])
        }
    }

    func testJSONNumbersOutOfRange() {
        for literal in ["9223372036854775808", "18446744073709551615", "-9223372036854775809", "1" + String(repeating: "0", count: 30)] {
            let shown = literal.count > 40 ? String(literal.prefix(40)) + "…" : literal
            assertInputError(jsonService(port: literal),
                             "test.json: document 1: Service default/web: spec.ports[0].port: integer \(shown) is out of range (-9223372036854775808 to 9223372036854775807)",
                             source: "test.json")
        }
        let long = "1" + String(repeating: "0", count: 500) + ".5"
        assertInputError(jsonService(port: long),
                         "test.json: line 1, column 125: number \(String(long.prefix(40)))… is out of range", source: "test.json")
        assertInputError(jsonService(port: "1E400"), "test.json: line 1, column 125: number 1E400 is out of range",
                         source: "test.json")
        assertInputError(jsonService(port: "-9223372036854775808"),
                         "test.json: document 1: Service default/web: spec.ports[0].port: -9223372036854775808 is not a valid port (1-65535)",
                         source: "test.json")
        assertInputError(jsonService(port: "80.0"),
                         "test.json: document 1: Service default/web: spec.ports[0].port: expected an integer, found a number (80.0)",
                         source: "test.json")
        assertInputError(jsonService(port: "1e2"),
                         "test.json: document 1: Service default/web: spec.ports[0].port: expected an integer, found a number (100.0)",
                         source: "test.json")
    }

    func testJSONDuplicateKeys() {
        assertInputError(#"{"apiVersion": "v1", "kind": "Service", "kind": "Service"}"#,
                         #"test.json: line 1, column 41: duplicate key "kind""#, source: "test.json")
        // A duplicate of a member that is skipped (not built) is refused as well.
        assertInputError("{\"apiVersion\": \"v1\", \"kind\": \"Service\",\n \"metadata\": {\"name\": \"a\", \"uid\": \"1\", \"uid\": \"2\"}}",
                         #"test.json: line 2, column 40: duplicate key "uid""#, source: "test.json")
        // Keys are compared after unescaping.
        assertInputError(#"{"kind": "Service", "\u006bind": "Service"}"#,
                         #"test.json: line 1, column 21: duplicate key "kind""#, source: "test.json")
    }

    func testJSONSkipsWhatIsNotReadButChecksIt() throws {
        let object = """
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "web", "managedFields": [{"fieldsV1": {"f:spec": {"f:ports": {".": {}}}}, "n": 1e999}],
                          "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\\"x\\": \\"\\u00e9\\"}\\n"}},
             "spec": {"clusterIP": "198.18.0.1", "ports": [{"port": 80}]},
             "status": {"conditions": [{"n": 18446744073709551616}], "loadBalancer": {}}}
            """
        // Numbers beyond range in skipped members are valid JSON and not built.
        XCTAssertEqual(try decode(object).service("web")?.ports.first?.port, 80)
        let broken = object.replacingOccurrences(of: "\"n\": 1e999", with: "\"n\": [1e")
        assertInputError(broken, "test.json: invalid JSON: line 2, column 105: expected a digit in the exponent, found '}'",
                         source: "test.json")
    }

    // MARK: YAML

    func testYAMLIntegerForms() throws {
        for (text, port) in [("80", 80), ("0x50", 80), ("0o120", 80), ("0120", 80), ("0b1010000", 80),
                             ("8_0", 80), ("+80", 80), ("!!int 80", 80), ("!!int 0x50", 80)] {
            XCTAssertEqual(try decodedPort(yamlService(port: text)), UInt16(port), text)
        }
        let field = "test.yaml: document 1: Service default/web: spec.ports[0].port: "
        assertInputError(yamlService(port: "-80"), field + "-80 is not a valid port (1-65535)")
        assertInputError(yamlService(port: "1:20"), field + #"expected an integer, found a string ("1:20")"#)
        assertInputError(yamlService(port: "\"80\""), field + #"expected an integer, found a string ("80")"#)
        assertInputError(yamlService(port: "80.0"), field + "expected an integer, found a number (80.0)")
        assertInputError(yamlService(port: "0x"), field + #"expected an integer, found a string ("0x")"#)
        assertInputError(yamlService(port: "0x_"), field + #"expected an integer, found a string ("0x_")"#)
        assertInputError(yamlService(port: "0_"), field + "0 is not a valid port (1-65535)")
        assertInputError(yamlService(port: "yes"), field + "expected an integer, found a boolean (true)")
    }

    func testYAMLIntegersOutOfRange() {
        let range = "is out of range (-9223372036854775808 to 9223372036854775807)"
        for literal in ["9223372036854775808", "18446744073709551615", "0x8000000000000000",
                        "-0x8000000000000001", 
                        "0o1777777777777777777777", "9_223_372_036_854_775_808"] {
            assertInputError(yamlService(port: literal), "test.yaml: document 1: Service default/web: spec.ports[0].port: integer \(literal) \(range)")
        }
        // Long literals are cut in messages.
        assertInputError(yamlService(port: "0b1" + String(repeating: "0", count: 63)),
                         "test.yaml: document 1: Service default/web: spec.ports[0].port: integer 0b1\(String(repeating: "0", count: 37))… \(range)")
        // Where no integer is read (the spec of a Deployment), it is no error.
        let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 18446744073709551616}\n"
        XCTAssertEqual(try decode(deployment).notices.map(\.code), [.skippedKind])
        assertInputError(yamlService(port: "1e400"), "test.yaml: line 9, column 11: number 1e400 is out of range")
    }

    func testYAMLExplicitTagsMustFit() {
        assertInputError(yamlService(port: "!!int ++80"), #"test.yaml: line 9, column 11: "++80" is not a valid integer"#)
        assertInputError(yamlService(port: "!!int 80.5"), #"test.yaml: line 9, column 11: "80.5" is not a valid integer"#)
        assertInputError(yamlService(port: "!!float eighty"), #"test.yaml: line 9, column 11: "eighty" is not a valid number"#)
        assertInputError(yamlService(port: "!!bool maybe"), #"test.yaml: line 9, column 11: "maybe" is not a valid boolean"#)
        assertInputError(yamlService(port: "!!str 80"),
                         #"test.yaml: document 1: Service default/web: spec.ports[0].port: expected an integer, found a string ("80")"#)
    }

    func testYAMLScalarsResolveAsBefore() throws {
        let yaml = sliceYAML("web-1", service: "web", body: """
            addressType: IPv4
            ports: [{port: 8080}]
            endpoints:
            - addresses: ["198.19.0.1"]
              conditions: {ready: no, serving: On, terminating: ~}
              nodeName: 'null'
            """)
        let decoded = try decode(stream(serviceYAML("web", spec: "clusterIP: 198.18.0.1\nports: [{port: 80, targetPort: 8080}]"), yaml))
        let endpoint = try XCTUnwrap(decoded.service("web")?.ports.first?.endpoints.first)
        XCTAssertEqual(endpoint, Endpoint(address: ip("198.19.0.1"), port: 8080, ready: false, serving: true,
                                          terminating: false, nodeName: "null"))
    }

    func testYAMLDuplicateKeys() {
        assertInputError("apiVersion: v1\nkind: Service\nkind: Service\n", #"test.yaml: line 3, column 1: duplicate key "kind""#)
        assertInputError("apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  uid: x\n  uid: y\n",
                         #"test.yaml: line 6, column 3: duplicate key "uid""#)
        // A merge key does not make a duplicate: the explicit key wins.
        XCTAssertNoThrow(try decode("""
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec:
              clusterIP: 198.18.0.1
              ports:
              - &p {port: 80, name: a}
              - <<: *p
                name: b
                port: 81
            """))
    }

    func testYAMLErrorsUseTheSameFormat() {
        assertInputError("apiVersion: v1\nkind: \"Service\n", 
                         "test.yaml: invalid YAML: line 3, column 1: found unexpected end of stream (while scanning a quoted scalar at line 2, column 7)")
        assertInputError("apiVersion: v1\nkind: [Service\n",
                         "test.yaml: invalid YAML: line 3, column 1: did not find expected ',' or ']' (while parsing a flow sequence at line 2, column 7)")
        assertInputError("kind: *nothing\n", "test.yaml: invalid YAML: line 1, column 7: unknown alias *nothing")
    }

    func testFlowStyleYAMLThatIsNotJSONIsReadAsYAML() throws {
        let flow = "{apiVersion: v1, kind: Service, metadata: {name: web}, spec: {clusterIP: 198.18.0.1, ports: [{port: 0x50}]}}"
        XCTAssertEqual(try decodedPort(flow), 80)
        let list = "[{apiVersion: v1, kind: Service, metadata: {name: web}, spec: {clusterIP: 198.18.0.1, ports: [{port: 80}]}}]"
        // A YAML list at the top is not a List object.
        assertInputError(list, "test.yaml: document 1: expected a Kubernetes object, found a list")
        // Neither JSON nor YAML: the JSON error is reported.
        assertInputError("{\"kind\": \"Service\",, }", "test.yaml: invalid JSON: line 1, column 20: expected a string key, found ','")
    }

    func testBytesEntryPointAndByteOrderMark() throws {
        var decoder = KubeObjectDecoder()
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array(jsonService(port: "80").utf8)
        try decoder.add(bytes: bytes, source: "bytes.json")
        XCTAssertEqual(try decoder.serviceMap().0.services.map(\.name.name), ["web"])
    }
}
