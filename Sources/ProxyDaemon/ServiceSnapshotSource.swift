import Foundation
import ServiceModel

/// The services to program, as the cluster's objects say they are now, with what changed
/// since the last snapshot was taken.
public struct ServiceSnapshot: Sendable {
    /// Every service with its endpoints.
    public var map: ServiceMap
    /// The services that changed since the previous snapshot; nil: everything may have
    /// changed (the first snapshot, a re-list), so every service is compared.
    public var changed: Set<ServiceName>?
    /// For endpoint changes: when the control plane recorded them (the EndpointSlice
    /// annotation `endpoints.kubernetes.io/last-change-trigger-time`), for the network
    /// programming latency once they are in the kernel.
    public var triggerTimes: [Date]

    public init(map: ServiceMap, changed: Set<ServiceName>?, triggerTimes: [Date] = []) {
        self.map = map; self.changed = changed; self.triggerTimes = triggerTimes
    }
}

/// Where the sync loop takes its services from: the watch caches of a daemon, or a fixed
/// map in tests.
public protocol ServiceSnapshotSource: AnyObject, Sendable {
    /// Whether changes arrived since the last snapshot was taken.
    var hasPendingChanges: Bool { get }

    /// The services now, and what changed since the last call; nil until the first complete
    /// lists of Services and EndpointSlices have arrived (nothing may be programmed before).
    func takeSnapshot() -> ServiceSnapshot?

    /// A sync of `snapshot` failed: its changes count as pending again, so the next
    /// snapshot carries them too.
    func restore(_ snapshot: ServiceSnapshot)
}
