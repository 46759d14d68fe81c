import Foundation
import Synchronization

/// The proxy's health as kube-proxy defines it, for `/healthz` and `/livez`.
///
/// The proxier is healthy as long as no queued change has waited longer than
/// `healthTimeout` (kube-proxy: twice the sync period) for its sync; it is so while it
/// starts, too, so a liveness probe does not kill a proxy still waiting for its first lists.
/// `/healthz` (readiness) is unhealthy until the node was programmed once, and while the node
/// is not eligible for traffic: being deleted, or tainted `ToBeDeletedByClusterAutoscaler`, so
/// that load balancers drain it first. `/livez` ignores both.
public final class ProxyHealth: Sendable {
    /// The taint the cluster autoscaler puts on a node it is about to delete.
    public static let toBeDeletedTaint = "ToBeDeletedByClusterAutoscaler"

    private struct State {
        var lastUpdated: Date?
        var oldestPendingQueued: Date?
        var nodeEligible = true
    }

    /// How long a queued change may wait for its sync before the proxy is unhealthy.
    public let healthTimeout: Duration
    private let now: @Sendable () -> Date
    private let state = Mutex(State())

    /// Health with the given timeout; `now` is the clock (injectable for tests).
    public init(healthTimeout: Duration, now: @escaping @Sendable () -> Date = { Date() }) {
        self.healthTimeout = healthTimeout
        self.now = now
    }

    /// A change arrived that the ruleset does not reflect yet.
    public func queuedUpdate() {
        let time = now()
        state.withLock { state in
            if state.oldestPendingQueued == nil { state.oldestPendingQueued = time }
        }
    }

    /// The node was programmed with everything queued so far.
    public func updated() {
        let time = now()
        state.withLock { state in
            state.oldestPendingQueued = nil
            state.lastUpdated = time
        }
    }

    /// Whether the node may take traffic: false while it is being deleted or carries the
    /// autoscaler's to-be-deleted taint.
    public func setNodeEligible(_ eligible: Bool) {
        state.withLock { $0.nodeEligible = eligible }
    }

    /// What `/healthz` or `/livez` answers now.
    public struct Report: Sendable, Equatable {
        /// No change has waited longer than the timeout (what `/livez` reports).
        public var healthy: Bool
        /// The node was programmed at least once.
        public var synced: Bool
        public var nodeEligible: Bool
        /// The last successful sync (the current time while healthy, as kube-proxy reports it).
        public var lastUpdated: Date?
        public var currentTime: Date
    }

    /// The proxier's own health (what `/livez` reports).
    public func report() -> Report {
        let time = now()
        return state.withLock { state in
            var healthy = true
            if let pending = state.oldestPendingQueued, Self.seconds(time.timeIntervalSince(pending)) >= healthTimeout {
                healthy = false
            }
            // As kube-proxy: a healthy proxier reports the current time as its last update.
            let synced = state.lastUpdated != nil
            return Report(healthy: healthy, synced: synced, nodeEligible: state.nodeEligible,
                          lastUpdated: healthy && synced ? time : state.lastUpdated, currentTime: time)
        }
    }

    private static func seconds(_ interval: TimeInterval) -> Duration {
        .nanoseconds(Int64((interval * 1e9).rounded()))
    }
}

extension ProxyHealth.Report {
    /// `/healthz`: healthy only once the node was programmed, and while it is eligible.
    public var healthzHealthy: Bool { healthy && synced && nodeEligible }

    /// The JSON body of `/healthz` (with `nodeEligible`) or `/livez`.
    public func body(includingNodeEligibility: Bool) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let last = lastUpdated.map { "\"\(formatter.string(from: $0))\"" } ?? "null"
        var fields = ["\"lastUpdated\": \(last)", "\"currentTime\": \"\(formatter.string(from: currentTime))\""]
        if includingNodeEligibility {
            fields.append("\"nodeEligible\": \(nodeEligible)")
            fields.append("\"healthy\": \(healthzHealthy)")
        } else {
            fields.append("\"healthy\": \(healthy)")
        }
        return "{" + fields.joined(separator: ", ") + "}"
    }
}
