import Foundation
import XCTest

/// nft accepts every golden ruleset of ProxyCompilerTests (`nft -c -f`, in a private network
/// namespace). The golden comparison itself needs no root and runs in ProxyCompilerTests; this
/// check needs CAP_NET_ADMIN.
final class GoldenNftCheckTests: XCTestCase {
    private static let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("ProxyCompilerTests/Golden")

    func testNftAcceptsEveryGoldenRuleset() throws {
        guard geteuid() == 0 else { throw XCTSkip("requires root: nft -c needs CAP_NET_ADMIN (in a private network namespace)") }
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.goldenDirectory.path)
            .filter { $0.hasSuffix(".nft") }.sorted()
        XCTAssertGreaterThanOrEqual(names.count, 8, "golden files not found in \(Self.goldenDirectory.path)")
        for name in names {
            let path = Self.goldenDirectory.appendingPathComponent(name).path
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
            process.arguments = ["-n", "nft", "-c", "-f", path]
            let errors = Pipe()
            process.standardError = errors
            try process.run()
            let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "nft -c -f rejects \(name):\n\(output)")
        }
    }
}
