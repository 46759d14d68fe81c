import XCTest
@testable import Nftables

final class GenerationStampTests: XCTestCase {
    func testACommitProducesTheNextGenerationAndSkipsZero() {
        XCTAssertEqual(GenerationStamp.generation(after: 41), 42)
        XCTAssertEqual(GenerationStamp.generation(after: UInt32.max), 1, "nf_tables skips 0 when it wraps")
    }

    func testOnlyOneElementOfTheStampsShapeIsAStamp() {
        let table = Table(family: .ip, name: "nftproxy")
        XCTAssertNil(GenerationStamp.generation(in: table), "no stamp set")
        XCTAssertNil(GenerationStamp.generation(in: GenerationStamp.stamped(table, elements: [])), "an empty one")
        let stamped = GenerationStamp.stamped(table, elements: [GenerationStamp.element(7)])
        XCTAssertEqual(GenerationStamp.generation(in: stamped), 7)
        XCTAssertEqual(GenerationStamp.elements(in: stamped), [GenerationStamp.element(7)])
        XCTAssertNil(GenerationStamp.generation(in: GenerationStamp.stamped(table, elements: [
            GenerationStamp.element(7), GenerationStamp.element(8),
        ])), "two elements: someone else wrote there")
        XCTAssertNil(GenerationStamp.generation(in: GenerationStamp.stamped(table, elements: [
            GenerationStamp.element(7).commented("x"),
        ])))
        var redeclared = stamped
        redeclared.sets[0].size = 4
        XCTAssertNil(GenerationStamp.generation(in: redeclared), "declared otherwise")
        XCTAssertEqual(GenerationStamp.stamped(stamped, elements: [GenerationStamp.element(9)]).sets.count, 1, "replaced, not added")
        XCTAssertEqual(GenerationStamp.unstamped(stamped), table)
    }

    func testRestampingDeletesWhatTheSetHeldAndAddsTheNewGeneration() {
        let transaction = GenerationStamp.restamp(family: .ip6, table: "nftproxy",
                                                  from: [GenerationStamp.element(3)], to: 4)
        XCTAssertEqual(transaction.operations.map(\.summary), [
            "delete element ip6 nftproxy generation-stamp (1 elements, first { 3 })",
            "add element ip6 nftproxy generation-stamp (1 elements, first { 4 })",
        ])
        XCTAssertEqual(GenerationStamp.restamp(family: .ip, table: "nftproxy", from: [], to: 1).operations.count, 1)
    }
}
