import XCTest
import ServiceModel
@testable import Nftables

final class FrontendDigestTests: XCTestCase {
    private let frontend: [Value] = [.address(IPAddress("198.18.0.10")!), .proto(6), .port(80)]

    private func backends(_ endpoints: [String], port: UInt16 = 8080, comment: String? = "node-2 remote") -> [SetElement] {
        endpoints.enumerated().map { index, address in
            SetElement(key: frontend + [.integer(UInt32(index))],
                       data: .values([.address(IPAddress(address)!), .port(port)])).commented(comment)
        }
    }

    private func digest(_ elements: [SetElement], map: String = "service-backends-2", modulus: UInt32 = 2) -> FrontendDigest {
        FrontendDigest.of([(map: map, modulus: modulus, elements: elements)])
    }

    func testTheSameInputGivesTheSameValueInEveryProcess() {
        // FNV-1a over a fixed encoding: a constant, whichever process computes it (Swift's
        // Hasher would give another value in every run). The value was computed apart from
        // this code, in Python, from the encoding FrontendDigest documents.
        let value = digest(backends(["198.19.0.1", "198.19.0.2"]))
        XCTAssertEqual(value.token, "d=\(String(value.value, radix: 16).leftPadded(16))")
        XCTAssertEqual(value.value, 0x6ad1_9a14_ed1a_1cc7, "the digest of a fixed input changed: \(value.token)")
        XCTAssertEqual(FrontendDigest().value, 0xcbf2_9ce4_8422_2325, "FNV-1a's offset basis")
    }

    func testEveryChangeOfWhatItCoversChangesIt() {
        let base = digest(backends(["198.19.0.1", "198.19.0.2"]))
        var variants: [String: FrontendDigest] = [
            "endpoint moved": digest(backends(["198.19.0.1", "198.19.0.3"])),
            "order": digest(backends(["198.19.0.2", "198.19.0.1"])),
            "port": digest(backends(["198.19.0.1", "198.19.0.2"], port: 8081)),
            "comment": digest(backends(["198.19.0.1", "198.19.0.2"], comment: "node-3 remote")),
            "no comment": digest(backends(["198.19.0.1", "198.19.0.2"], comment: nil)),
            "modulus": digest(backends(["198.19.0.1", "198.19.0.2"]), modulus: 3),
            "map": digest(backends(["198.19.0.1", "198.19.0.2"]), map: "nodeport-backends-2"),
            "one endpoint fewer": digest(Array(backends(["198.19.0.1", "198.19.0.2"]).prefix(1))),
            "nothing": digest([]),
        ]
        var slots = backends(["198.19.0.1", "198.19.0.2"])
        slots[1].key[3] = .integer(5)
        variants["slot"] = digest(slots)
        variants["a second map"] = FrontendDigest.of([
            (map: "service-backends-2", modulus: 2, elements: backends(["198.19.0.1", "198.19.0.2"])),
            (map: "local-backends-1", modulus: 1, elements: Array(backends(["198.19.0.1"]))),
        ])
        for (change, value) in variants {
            XCTAssertNotEqual(value, base, change)
        }
        XCTAssertEqual(Set(variants.values).count, variants.count, "two different inputs share a digest")
        XCTAssertEqual(digest(backends(["198.19.0.1", "198.19.0.2"])), base, "the same input, again")
    }

    func testMapsAreHashedInNameOrder() {
        let service = (map: "service-backends-1", modulus: UInt32(1), elements: backends(["198.19.0.1"]))
        let local = (map: "local-backends-1", modulus: UInt32(1), elements: backends(["198.19.0.2"]))
        XCTAssertEqual(FrontendDigest.of([service, local]), FrontendDigest.of([local, service]))
    }

    func testTheCommentIsTheToken() throws {
        let value = FrontendDigest(value: 0xab)
        XCTAssertEqual(value.token, "d=00000000000000ab")
        XCTAssertEqual(FrontendDigest(comment: value.token), value)
        let large = FrontendDigest(value: .max)
        XCTAssertEqual(FrontendDigest(comment: large.token), large)
        for foreign in ["ns/web http", "d=00000000000000AB", "d=ab", "d=00000000000000abc", "d=0000000000000g0b",
                        "x d=00000000000000ab", ""] {
            XCTAssertNil(FrontendDigest(comment: foreign), foreign)
        }
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
