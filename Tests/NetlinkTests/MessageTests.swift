import XCTest

@testable import Netlink

/// Building and reading messages without a kernel: the attribute writer, the one
/// attribute walker, message views, and batch framing.
final class MessageTests: XCTestCase {
    private func message(_ build: (NetlinkMessageWriter) -> Void) -> [UInt8] {
        NetlinkMessageWriter.message(subsystem: .conntrack, message: 1, family: NetfilterFamily.ipv6, build)
    }

    func testWrittenAttributesReadBackThroughTheWalker() throws {
        let bytes = message { writer in
            writer.put(1, u8: 7)
            writer.put(2, bigEndian16: 0x1234)
            writer.put(3, bigEndian32: 0xdead_beef)
            writer.put(4, raw32: 0x0102_0304)
            writer.put(5, string: "nftproxy")
            writer.nest(6) { nest in
                nest.put(1, bytes: [1, 2, 3])
                nest.nest(2) { inner in inner.put(9, bigEndian16: 53) }
            }
        }
        XCTAssertEqual(bytes.count % 4, 0)
        var seen: [UInt16] = []
        try NetlinkMessageView.parse(bytes) { view in
            XCTAssertEqual(view.subsystem, NetfilterSubsystem.conntrack.rawValue)
            XCTAssertEqual(view.message, 1)
            XCTAssertEqual(view.family, NetfilterFamily.ipv6)
            XCTAssertEqual(view.length, bytes.count)
            view.forEachAttribute { attribute in
                seen.append(attribute.type)
                switch attribute.type {
                case 1: XCTAssertEqual(attribute.u8, 7)
                case 2: XCTAssertEqual(attribute.bigEndian16, 0x1234)
                case 3: XCTAssertEqual(attribute.bigEndian32, 0xdead_beef)
                case 4: XCTAssertEqual(attribute.raw32, 0x0102_0304)
                case 5: XCTAssertEqual(attribute.string, "nftproxy")
                case 6:
                    var members: [String] = []
                    attribute.forEachNested { member in
                        if member.type == 1 { members.append("\(member.bytes)") }
                        member.forEachNested { inner in members.append("\(inner.type)=\(inner.bigEndian16 ?? 0)") }
                    }
                    XCTAssertEqual(members, ["[1, 2, 3]", "9=53"])
                default: XCTFail("unexpected attribute \(attribute.type)")
                }
            }
        }
        XCTAssertEqual(seen, [1, 2, 3, 4, 5, 6])
    }

    func testShortPayloadsReadAsNilAndTruncatedAttributesEndTheWalk() throws {
        var bytes = message { writer in
            writer.put(1, u8: 7)
            writer.put(2, bigEndian32: 1)
        }
        // Claim a longer second attribute than the message holds: the walk stops before it.
        bytes[bytes.count - 8] = 200
        var types: [UInt16] = []
        try NetlinkMessageView.parse(bytes) { view in
            view.forEachAttribute { attribute in
                types.append(attribute.type)
                XCTAssertNil(attribute.bigEndian16)
                XCTAssertNil(attribute.bigEndian32)
            }
        }
        XCTAssertEqual(types, [1])
    }

    func testMessagesShorterThanTheirHeadersOrTheirLengthAreMalformed() {
        let bytes = message { $0.put(1, u8: 7) }
        XCTAssertThrowsError(try NetlinkMessageView.parse(Array(bytes.prefix(19))) { _ in })
        var overlong = bytes
        overlong[0] = UInt8(bytes.count + 4)
        XCTAssertThrowsError(try NetlinkMessageView.parse(overlong) { _ in })
    }

    func testBatchCopiesAreIndependent() throws {
        var first = NetlinkBatch()
        try first.append("add table ip a", type: NftMessage.newTable, family: NetfilterFamily.ipv4) {
            (message) throws(NetlinkError) in try message.putTable(NftTable(name: "a"))
        }
        let snapshot = first
        try first.append("add table ip b", type: NftMessage.newTable, family: NetfilterFamily.ipv4) {
            (message) throws(NetlinkError) in try message.putTable(NftTable(name: "b"))
        }
        XCTAssertEqual(snapshot.operationCount, 1)
        XCTAssertEqual(first.operationCount, 2)
        XCTAssertEqual(first.operations, ["add table ip a", "add table ip b"])
        XCTAssertGreaterThan(first.byteCount, snapshot.byteCount)
        XCTAssertEqual(NetlinkBatch().byteCount, 2 * (16 + 4))
        XCTAssertEqual(NetlinkBatch(generationID: 7).byteCount, 2 * (16 + 4) + 8)
    }
}
