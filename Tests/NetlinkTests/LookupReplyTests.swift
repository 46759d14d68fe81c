import XCTest

@testable import Netlink

/// The direct reader of element lookup replies gives what libnftnl's parse gives, and
/// leaves to libnftnl what it does not know.
final class LookupReplyTests: XCTestCase {
    private func reply(_ element: NftSetElement) throws -> [UInt8] {
        var failure: Error?
        let bytes = NetlinkMessageWriter.message(subsystem: .nftables, message: NftMessage.newElements,
                                                 family: NetfilterFamily.ipv4) { writer in
            do {
                try writer.putElements(NftSet(table: "nftproxy", name: "service-backends-3", elements: [element]))
            } catch { failure = error }
        }
        if let failure { throw failure }
        return bytes
    }

    func testElementsReadTheSameAsLibnftnlReadsThem() throws {
        let elements = [
            NftSetElement(key: [198, 18, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0, 2, 0, 0, 0], data: [198, 19, 1, 11, 0x1f, 0x90, 0, 0],
                          expressions: [.counter(packets: 7, bytes: 420)]),
            NftSetElement(key: [198, 18, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0], verdict: VerdictCode.goto, chain: "service-lb-3"),
            NftSetElement(key: [10, 0, 0, 1], verdict: VerdictCode.drop, timeout: 60_000, expiration: 59_000),
        ]
        for element in elements {
            let bytes = try reply(element)
            let direct = try NetlinkMessageView.parse(bytes) { NftSetElement.lookupReply($0) }
            let parsed = try NetlinkMessageView.parse(bytes) { try NftSet(parsingElements: $0).elements }
            XCTAssertEqual(parsed.count, 1)
            XCTAssertEqual(direct, parsed.first, "\(element)")
        }
    }

    func testAnElementWithAKeyEndIsLeftToLibnftnl() throws {
        var element = NftSetElement(key: [198, 18, 0, 1, 0, 80, 0, 0])
        element.keyEnd = [198, 18, 0, 9, 0, 90, 0, 0]
        let bytes = try reply(element)
        XCTAssertNil(try NetlinkMessageView.parse(bytes) { NftSetElement.lookupReply($0) })
    }
}
