@testable import ProxyCompiler
import XCTest

/// `FirstSeen` numbers values in the order first seen, below and beyond the point where it
/// switches from a linear search to a hash table.
final class FirstSeenTests: XCTestCase {
    func testPositionsAreTheOrderFirstSeenOnEitherSideOfTheSwitch() {
        var seen = FirstSeen<Int>()
        var reference: [Int: Int] = [:]
        for step in 0..<2_000 {
            // Scattered, then repeated: 7919 is prime to 150, so 150 steps give every value once.
            let value = (step * 7919) % 150
            let expected = reference[value] ?? reference.count
            reference[value] = expected
            XCTAssertEqual(seen.index(of: value), expected, "value \(value)")
        }
        XCTAssertEqual(reference.count, 150, "every value came up")
        XCTAssertFalse(seen.insert(7), "seen already")
        XCTAssertTrue(seen.insert(1_000))
        XCTAssertFalse(seen.insert(1_000))
    }
}
