import Foundation
import XCTest

/// Asks nft whether it accepts a script (`nft -c -f`), inside a private network namespace.
enum NftCheck {
    static func assertAccepted(_ script: String, name: String, file: StaticString, line: UInt) throws {
        guard geteuid() == 0 else {
            throw XCTSkip("nft -c needs root (CAP_NET_ADMIN): not checking \(name) with nft")
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nftproxy-\(getpid())-\(name).nft").path
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["-n", "nft", "-c", "-f", path]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "nft -c -f rejects \(name):\n\(output)", file: file, line: line)
    }
}
