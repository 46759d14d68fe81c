import Foundation
import ProxyDaemon
import Synchronization
import XCTest

/// kube-proxy's health rules, on an injected clock.
final class ProxyHealthTests: XCTestCase {
    /// A clock the test moves by hand.
    final class ManualClock: Sendable {
        private let time = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        var now: Date { time.withLock { $0 } }
        func advance(_ seconds: TimeInterval) { time.withLock { $0 += seconds } }
    }

    func testReadyAfterTheFirstSyncAliveUnlessAChangeWaitsTooLong() {
        let clock = ManualClock()
        let health = ProxyHealth(healthTimeout: .seconds(120), now: { clock.now })
        XCTAssertFalse(health.report().healthzHealthy, "nothing programmed yet")
        XCTAssertTrue(health.report().healthy, "alive while it starts")
        health.queuedUpdate()
        clock.advance(120)
        XCTAssertFalse(health.report().healthy, "a change has waited 120 s, even before the first sync")
        health.updated()
        XCTAssertTrue(health.report().healthy)
        XCTAssertTrue(health.report().healthzHealthy)

        health.queuedUpdate()
        clock.advance(119)
        health.queuedUpdate()   // the oldest pending change counts, not the newest
        XCTAssertTrue(health.report().healthy)
        clock.advance(1)
        XCTAssertFalse(health.report().healthy, "a change has waited 120 s")
        XCTAssertEqual(health.report().lastUpdated, Date(timeIntervalSince1970: 1_800_000_120), "when the last sync was")
        health.updated()
        XCTAssertTrue(health.report().healthy)
        XCTAssertEqual(health.report().lastUpdated, clock.now, "a healthy proxy reports the current time")
    }

    func testNodeEligibilityOnlyAffectsHealthz() {
        let clock = ManualClock()
        let health = ProxyHealth(healthTimeout: .seconds(60), now: { clock.now })
        health.updated()
        health.setNodeEligible(false)
        let report = health.report()
        XCTAssertTrue(report.healthy)
        XCTAssertFalse(report.healthzHealthy)
        XCTAssertEqual(report.body(includingNodeEligibility: true),
                       #"{"lastUpdated": "2027-01-15T08:00:00.000Z", "currentTime": "2027-01-15T08:00:00.000Z", "#
                       + #""nodeEligible": false, "healthy": false}"#)
        XCTAssertEqual(report.body(includingNodeEligibility: false),
                       #"{"lastUpdated": "2027-01-15T08:00:00.000Z", "currentTime": "2027-01-15T08:00:00.000Z", "healthy": true}"#)
        let fresh = ProxyHealth(healthTimeout: .seconds(60), now: { clock.now }).report()
        XCTAssertTrue(fresh.body(includingNodeEligibility: false).hasPrefix(#"{"lastUpdated": null"#))
        XCTAssertTrue(fresh.body(includingNodeEligibility: true).hasSuffix(#""healthy": false}"#))
    }
}
