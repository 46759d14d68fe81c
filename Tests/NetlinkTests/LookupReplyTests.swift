import XCTest

@testable import Netlink

/// The direct reader of element lookup replies gives what libnftnl's parse gives, and
/// leaves to libnftnl what it does not know.
final class LookupReplyTests: XCTestCase {
    private func reply(_ element: NftSetElement) throws -> [UInt8] { try reply([element]) }

    private func reply(_ elements: [NftSetElement]) throws -> [UInt8] {
        var failure: Error?
        let bytes = NetlinkMessageWriter.message(subsystem: .nftables, message: NftMessage.newElements,
                                                 family: NetfilterFamily.ipv4) { writer in
            do {
                try writer.putElements(NftSet(table: "nftproxy", name: "service-backends-3", elements: elements))
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

    /// A dumped message of many elements (counters, comments, verdicts, timeouts) reads, in
    /// order, as each element reads alone (which the test above compares with libnftnl); a
    /// key end leaves the whole message to libnftnl.
    func testDumpedElementsReadAsEachElementReadsAlone() throws {
        var elements: [NftSetElement] = []
        for index in 0..<120 {
            var element = NftSetElement(key: [198, 18, UInt8(index / 256), UInt8(index % 256), 6, 0, 0, 0, 0, 80, 0, 0],
                                        expressions: [.counter(packets: UInt64(index + 1) * 3, bytes: UInt64(index + 1) << 40)])
            switch index % 4 {
            case 0: element.data = [198, 19, 1, UInt8(index % 256), 0x1f, 0x90, 0, 0]
            case 1: element.verdict = VerdictCode.goto; element.chain = "count-endpoints-\(index % 16)"; element.expressions = []
            case 2: element.userData = [0, 7] + Array("node-\(index)".utf8) + [0]
            default: element.timeout = 60_000; element.expiration = 12_345
            }
            elements.append(element)
        }
        let alone = try elements.map { element in try NetlinkMessageView.parse(try reply(element)) { NftSetElement.lookupReply($0) } }
        XCTAssertEqual(alone.compactMap { $0 }.count, elements.count, "each element is read alone")
        let direct = try NetlinkMessageView.parse(Self.asDumped(try reply(elements))) { NftSetElement.dumpReply($0) }
        XCTAssertEqual(direct, alone.compactMap { $0 })

        var ranged = NftSetElement(key: [198, 18, 0, 1, 0, 80, 0, 0])
        ranged.keyEnd = [198, 18, 0, 9, 0, 90, 0, 0]
        XCTAssertNil(try NetlinkMessageView.parse(Self.asDumped(try reply([elements[0], ranged]))) { NftSetElement.dumpReply($0) })
    }

    /// `message` with its elements typed as the kernel's dumps type them: libnftnl numbers
    /// the elements it writes 1, 2, 3… (the kernel ignores those types), a dump calls each
    /// `NFTA_LIST_ELEM`.
    private static func asDumped(_ message: [UInt8]) -> [UInt8] {
        var bytes = message
        func length(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        var at = 20  // nlmsghdr and nfgenmsg
        while at + 4 <= bytes.count {
            if (Int(bytes[at + 2]) | Int(bytes[at + 3]) << 8) & 0x3FFF == 3 {  // NFTA_SET_ELEM_LIST_ELEMENTS
                var item = at + 4
                while item + 4 <= at + length(at) {
                    bytes[item + 2] = 1; bytes[item + 3] = 0x80  // NFTA_LIST_ELEM, nested
                    item += (length(item) + 3) & ~3
                }
            }
            at += (length(at) + 3) & ~3
        }
        return bytes
    }
}
