import Foundation
@testable import KubeAPIStandIn
import XCTest

/// How the stand-in stores objects given as JSON bytes: kept as they are, compact, with
/// kind, apiVersion and the metadata the server sets, without a round trip through
/// Foundation objects.
final class StoredObjectTests: XCTestCase {
    private static let pretty = """
        {
          "kind": "Service",
          "metadata": {
            "name": "web",
            "namespace": "shop",
            "labels": {"app": "w\\u0065b", "tier": "front\\"end", "emoji": "\\ud83d\\ude00"},
            "annotations": {"note": "a b\\nc {not: json}"},
            "resourceVersion": "7"
          },
          "spec": {"ports": [ {"port": 80, "protocol": "TCP"} ], "clusterIP": "10.96.0.10", "ratio": -1.5e3},
          "status": {"loadBalancer": {}}
        }
        """

    private func parse(_ bytes: [UInt8]) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    func testStoredBytesAreCompactWithKindApiVersionAndServerMetadata() throws {
        let incoming = try IncomingObject(resource: .services, json: Array(Self.pretty.utf8))
        XCTAssertEqual(incoming.key, "shop/web")
        XCTAssertEqual(incoming.labels, ["app": "web", "tier": "front\"end", "emoji": "\u{1F600}"])
        let stored = StoredObject(incoming, resourceVersion: 42, previous: nil)

        XCTAssertFalse(stored.json.contains(UInt8(ascii: "\n")), "a watch event is one line")
        XCTAssertTrue(String(decoding: stored.json, as: UTF8.self).hasPrefix(#"{"kind":"Service","apiVersion":"v1","metadata":{"#))
        let object = try parse(stored.json)
        let metadata = try XCTUnwrap(object["metadata"] as? [String: Any])
        XCTAssertEqual(metadata["resourceVersion"] as? String, "42")
        XCTAssertEqual(metadata["uid"] as? String, stored.uid)
        XCTAssertEqual(metadata["creationTimestamp"] as? String, stored.creationTimestamp)
        XCTAssertEqual((metadata["annotations"] as? [String: Any])?["note"] as? String, "a b\nc {not: json}")
        let spec = try XCTUnwrap(object["spec"] as? [String: Any])
        XCTAssertEqual(spec["clusterIP"] as? String, "10.96.0.10")
        XCTAssertEqual(spec["ratio"] as? Double, -1500)
        XCTAssertEqual(((spec["ports"] as? [[String: Any]])?.first)?["port"] as? Int, 80)

        // The list item is the same object without kind and apiVersion.
        let item = try parse(stored.itemJSON)
        XCTAssertNil(item["kind"])
        XCTAssertNil(item["apiVersion"])
        XCTAssertEqual(stored.itemByteCount, stored.itemJSON.count)
        var withoutEnvelope = object
        withoutEnvelope["kind"] = nil
        withoutEnvelope["apiVersion"] = nil
        XCTAssertEqual(try JSONSerialization.data(withJSONObject: item, options: [.sortedKeys]),
                       try JSONSerialization.data(withJSONObject: withoutEnvelope, options: [.sortedKeys]))
    }

    func testAnUpdateKeepsUIDAndCreationTimestampAndTheLastValueOfARepeatedKey() throws {
        let first = StoredObject(try IncomingObject(resource: .services, json: Array(Self.pretty.utf8)),
                                 resourceVersion: 2, previous: nil)
        let text = #"{"metadata":{"name":"web","namespace":"shop","labels":{"app":"old"},"labels":{"app":"new"}},"spec":1,"spec":2}"#
        let second = StoredObject(try IncomingObject(resource: .services, json: Array(text.utf8)),
                                  resourceVersion: 3, previous: first)
        XCTAssertEqual(second.uid, first.uid)
        XCTAssertEqual(second.creationTimestamp, first.creationTimestamp)
        XCTAssertEqual(second.labels, ["app": "new"])
        let object = try parse(second.json)
        XCTAssertEqual(object["spec"] as? Int, 2)
        XCTAssertEqual((object["metadata"] as? [String: Any])?["resourceVersion"] as? String, "3")
        XCTAssertEqual(String(decoding: second.json, as: UTF8.self).components(separatedBy: "\"spec\"").count, 2)
    }

    func testBadObjectsAreRefusedWithTheirReason() {
        let cases: [(String, String)] = [
            ("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"}", "unterminated"),
            ("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"}} x", "text after the object"),
            ("[1]", "expected \"{\""),
            ("{\"spec\":{}}", "without metadata.name"),
            ("{\"metadata\":{\"name\":\"\",\"namespace\":\"n\"}}", "without metadata.name"),
            ("{\"metadata\":{\"name\":\"a\"}}", "without metadata.namespace"),
            ("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\",\"labels\":{\"x\":1}}}", "label x is not a string"),
            ("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"},\"spec\":tru}", "value expected"),
            ("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"},\"spec\":01.}", "bad number"),
            ("{\"metadata\":{\"name\":\"a\\q\",\"namespace\":\"n\"}}", "bad escape"),
            ("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"},\"spec\":" + String(repeating: "[", count: 10_000) + "}",
             "nested too deeply"),
        ]
        for (text, reason) in cases {
            XCTAssertThrowsError(try IncomingObject(resource: .services, json: Array(text.utf8)), text) { error in
                XCTAssertTrue("\(error)".contains(reason), "\(text): \(error)")
            }
        }
    }

    func testLoadFileReadsAListWithoutParsingItIntoFoundationObjects() throws {
        let directory = NSTemporaryDirectory() + "nftproxy-standin-load-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/objects.json"
        try Data("""
            {"kind":"List","items":[
              \(Self.pretty),
              {"kind":"Node","metadata":{"name":"node-0"}}
            ]}

            """.utf8).write(to: URL(fileURLWithPath: file))
        let server = try StandInAPIServer()
        XCTAssertEqual(try server.load(file: file), 2)
        XCTAssertEqual(server.resourceVersion, 3)

        try Data(#"{"kind":"List","items":[{"kind":"Pod","metadata":{"name":"p"}}]}"#.utf8)
            .write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try server.load(file: file)) { error in
            XCTAssertEqual(error as? StandInError, .unknownResource("\(file): items[0]: kind \"Pod\" is not served"))
        }
    }
}
