import Foundation
import KubeObjects
import ServiceModel
import XCTest

/// Inputs meant to crash, hang or exhaust the parsers end in an ``InputError`` (or, when they
/// are valid, in a ServiceMap) within the limits of README "Input limits".
final class HostileInputTests: XCTestCase {
    private func outcome(_ bytes: [UInt8], source: String = "test.yaml") -> Result<ServiceMap, InputError> {
        var decoder = KubeObjectDecoder()
        return Result { () throws(InputError) in
            try decoder.add(bytes: bytes, source: source)
            return try decoder.serviceMap().0
        }
    }

    private func assertError(_ bytes: [UInt8], _ message: String, source: String = "test.yaml",
                             file: StaticString = #filePath, line: UInt = #line) {
        switch outcome(bytes, source: source) {
        case .success: XCTFail("expected error: \(message)", file: file, line: line)
        case .failure(let error): XCTAssertEqual(error.description, message, file: file, line: line)
        }
    }

    func testTruncatedInputs() {
        let json = Array(#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}"#.utf8)
        for length in 1..<json.count {
            guard case .failure(let error) = outcome(Array(json[..<length]), source: "t.json") else {
                XCTFail("truncated at \(length) was accepted")
                continue
            }
            XCTAssertTrue(error.description.hasPrefix("t.json: invalid JSON: line 1, column "), error.description)
        }
        assertError(Array("apiVersion: v1\nkind: Service\nmetadata: {name: \"web".utf8),
                    "test.yaml: invalid YAML: line 3, column 22: found unexpected end of stream (while scanning a quoted scalar at line 3, column 18)")
    }

    func testInvalidUTF8() {
        let json: [UInt8] = Array(#"{"kind": ""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        assertError(json, "test.json: invalid JSON: line 1, column 11: invalid UTF-8", source: "test.json")
        // In a part that is skipped, too.
        let skipped: [UInt8] = Array(#"{"kind": "List", "junk": ""#.utf8) + [0xED, 0xA0, 0x80] + Array(#""}"#.utf8)
        assertError(skipped, "test.json: invalid JSON: line 1, column 27: invalid UTF-8", source: "test.json")
        let yaml: [UInt8] = Array("kind: Service\nmetadata:\n  name: ".utf8) + [0xFF] + Array("\n".utf8)
        assertError(yaml, "test.yaml: invalid YAML: line 3, column 9: invalid UTF-8 (invalid leading UTF-8 octet)")
    }

    func testDeepNesting() {
        let depth = 100_000
        let json = Array(String(repeating: "[", count: depth).utf8) + Array(String(repeating: "]", count: depth).utf8)
        assertError(json, "test.json: line 1, column 257: nested deeper than 256 levels", source: "test.json")
        let object = Array(String(repeating: #"{"a":"#, count: depth).utf8)
        assertError(object, "test.json: line 1, column 1281: nested deeper than 256 levels", source: "test.json")
        let flow = Array(("kind: " + String(repeating: "[", count: depth)).utf8)
        assertError(flow, "test.yaml: line 1, column 262: nested deeper than 256 levels")
        var block = ""
        for level in 0..<1_000 { block += String(repeating: " ", count: level) + "a:\n" }
        assertError(Array(block.utf8), "test.yaml: line 257, column 257: nested deeper than 256 levels")
        let sequences = Array((String(repeating: "- ", count: depth) + "x\n").utf8)
        assertError(sequences, "test.yaml: line 1, column 513: nested deeper than 256 levels")
    }

    func testAliasBombs() {
        var bomb = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            let previous = Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
            bomb += "  a\(level): &a\(level) [\(previous)]\n"
        }
        assertError(Array(bomb.utf8), "test.yaml: line 10, column 47: aliases expand to more than 1000000 nodes")
        // Anchored nodes are built wherever they are (an alias may use them anywhere later),
        // so the same under a member that is not read ends the same way.
        let unread = bomb.replacingOccurrences(of: "spec:\n", with: "data:\n")
        assertError(Array(unread.utf8), "test.yaml: line 10, column 47: aliases expand to more than 1000000 nodes")
        let many = "kind: List\nitems: &x []\nother: [" + Array(repeating: "*x", count: 10_001).joined(separator: ", ") + "]\n"
        assertError(Array(many.utf8), "test.yaml: line 3, column 40009: more than 10000 aliases")
    }

    func testObjectsWithManyKeys() {
        // 100,000 keys that are not read, then one repeated: found without comparing every pair.
        let keys = (0..<100_000).map { "k\($0)" }
        let json = #"{"kind": "List", "metadata": {"#
            + keys.map { #""\#($0)": 1"# }.joined(separator: ", ") + #", "k5": 2}}"#
        assertError(Array(json.utf8), #"test.json: line 1, column 1288921: duplicate key "k5""#, source: "test.json")
        let yaml = "kind: List\nmetadata:\n" + keys.map { "  \($0): 1\n" }.joined() + "  k5: 2\n"
        assertError(Array(yaml.utf8), #"test.yaml: line 100003, column 3: duplicate key "k5""#)
    }

    func testHundredMegabyteString() throws {
        let huge = [UInt8](repeating: UInt8(ascii: "x"), count: 100 << 20)
        let service = #"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "annotations": {"big": ""#
        let rest = #""}}, "spec": {"clusterIP": "198.18.0.1", "ports": [{"port": 80}]}}"#
        let map = try outcome(Array(service.utf8) + huge + Array(rest.utf8), source: "big.json").get()
        XCTAssertEqual(map.services.map(\.name.name), ["web"])
        // Where it is read, it is quoted in messages only in part.
        let port = #"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"clusterIP": "198.18.0.1", "ports": [{"port": ""#
        guard case .failure(let error) = outcome(Array(port.utf8) + huge + Array(#""}]}}"#.utf8), source: "big.json") else {
            return XCTFail("a 100 MB port was accepted")
        }
        XCTAssertEqual(error.description, "big.json: document 1: Service default/web: spec.ports[0].port: expected an integer, found a string (\"\(String(repeating: "x", count: 256))…\")")
    }
}
