import Foundation
@testable import KubeObjects
import XCTest

/// `endpoints.kubernetes.io/last-change-trigger-time`, read by hand, agrees with Foundation's
/// RFC 3339 reading; anything else is no time at all.
final class TriggerTimeTests: XCTestCase {
    func testAgreesWithFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        for text in ["2026-12-01T15:07:00Z", "1970-01-01T00:00:00Z", "2000-02-29T23:59:59Z", "2024-03-01T00:00:00Z",
                     "2026-12-01T15:07:00+02:00", "2026-12-01T15:07:00-05:30", "1999-12-31T23:59:59Z"] {
            XCTAssertEqual(triggerTime(text), formatter.date(from: text), text)
        }
        XCTAssertEqual(triggerTime("2026-12-01T15:07:00.250Z")?.timeIntervalSince1970 ?? 0,
                       (formatter.date(from: "2026-12-01T15:07:00Z")?.timeIntervalSince1970 ?? 0) + 0.25, accuracy: 1e-6)
        for bad in ["", "2026-12-01", "2026-12-01T15:07:00", "2026-13-01T15:07:00Z", "2026-12-01T15:07:00.Z",
                    "2026-12-01T15:07:00Zjunk", "yesterday", "2026-12-01 15:07:00Z"] {
            XCTAssertNil(triggerTime(bad), bad)
        }
        XCTAssertNil(triggerTime(nil))
    }
}
