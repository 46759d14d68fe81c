import Foundation
import XCTest
@testable import Netlink
import ServiceModel
import ServiceTestSupport
@testable import Nftables

/// Pins the bytes the encoder sends for a table that uses every statement and set option:
/// a change to the wire layer or the encoder that changes a single byte fails here, without
/// a kernel. The kernel tests show that these bytes load as `nft -f` of the same ruleset
/// does (`ReadBackTests`, `ApplyTests`). Set UPDATE_GOLDEN=1 to rewrite the file after an
/// intended change, and run those kernel tests before committing it.
final class EncodedBytesTests: XCTestCase {
    private static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Golden/encoded-table.hex")

    private var table: Table { SampleTables.everyStatementAndSetOption }

    /// The batch's messages in hex, one per line, with sequence numbers zeroed.
    private func encoded(_ transaction: Transaction) throws -> String {
        let batch = try NftablesClient.batch(for: transaction, generationID: nil)
        return batch.withMessageBytes { bytes in
            var lines: [String] = []
            var offset = 0
            while offset + 16 <= bytes.count {
                let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                var message = Array(bytes[offset..<(offset + length)])
                message.replaceSubrange(8..<12, with: [0, 0, 0, 0])
                lines.append(message.map { String(format: "%02x", $0) }.joined())
                offset += (length + 3) & ~3
            }
            return zip(batch.operations, lines).map { "# \($0)\n\($1)" }.joined(separator: "\n") + "\n"
        }
    }

    func testEncodedTableBytesAreUnchanged() throws {
        var transaction = Transaction()
        transaction.replace(table)
        let text = try encoded(transaction)
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: Self.golden.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: Self.golden, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: Self.golden, encoding: .utf8)
        XCTAssertEqual(text, expected, "encoded bytes differ from Golden/encoded-table.hex; UPDATE_GOLDEN=1 rewrites it")
    }
}
