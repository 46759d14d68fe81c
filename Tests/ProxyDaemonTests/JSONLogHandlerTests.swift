import Foundation
import Logging
import ProxyDaemon
import Synchronization
import XCTest

final class JSONLogHandlerTests: XCTestCase {
    func testOneJSONObjectPerLineWithMetadata() throws {
        let lines = Mutex<[String]>([])
        var logger = Logger(label: "nftproxy.sync") { label in
            JSONLogHandler(label: label) { line in lines.withLock { $0.append(line) } }
        }
        logger[metadataKey: "node"] = "node-1"
        logger.info("synced \"now\"\n", metadata: ["operations": "18", "path": "incremental"])
        logger.debug("not shown at info")
        let written = lines.withLock { $0 }
        XCTAssertEqual(written.count, 1)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(written[0].utf8)) as? [String: String])
        XCTAssertEqual(object["msg"], "synced \"now\"\n")
        XCTAssertEqual(object["level"], "info")
        XCTAssertEqual(object["logger"], "nftproxy.sync")
        XCTAssertEqual(object["node"], "node-1")
        XCTAssertEqual(object["operations"], "18")
        XCTAssertNotNil(object["ts"])
    }
}
