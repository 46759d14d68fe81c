import Foundation
import KubeObjects
import ServiceModel
import Synchronization

/// The daemon's view of the cluster: every Service and EndpointSlice the watches delivered,
/// decoded, and each served Service assembled with its endpoints. A change marks only the
/// services it concerns, and a snapshot re-assembles only those, so the sync loop can hand
/// the engine their names and a change costs what changed.
///
/// It is ready (snapshots exist) once complete lists of both Services and EndpointSlices
/// arrived; before that nothing may be programmed.
public final class ClusterState: ServiceSnapshotSource {
    /// What one change did: how many objects of each kind changed (for the metrics).
    public struct ChangeCount: Sendable, Equatable {
        public var services = 0
        public var endpointSlices = 0

        public init(services: Int = 0, endpointSlices: Int = 0) {
            self.services = services; self.endpointSlices = endpointSlices
        }

        public var isEmpty: Bool { services == 0 && endpointSlices == 0 }
    }

    private struct State {
        var servicesListed = false
        var slicesListed = false
        /// Decoded Services; nil: valid but not served (headless, ExternalName, ...).
        var services: [ServiceName: Service?] = [:]
        var slices: [String: EndpointSliceObject] = [:]
        var slicesOfService: [ServiceName: Set<String>] = [:]
        /// Served services with their endpoints, as of the last snapshot, sorted by name:
        /// updated in place, so a snapshot after a change costs what changed.
        var served: [Service] = []
        var dirty: Set<ServiceName> = []
        /// Everything must be compared at the next snapshot (first one, after a re-list).
        var everything = true
        var pending = ChangeCount()
        /// Trigger times of the slice changes not yet taken by a snapshot.
        var triggerTimes: [Date] = []

        var ready: Bool { servicesListed && slicesListed }
    }

    private let state = Mutex(State())

    public init() {}

    public var hasPendingChanges: Bool {
        state.withLock { $0.ready && ($0.everything || !$0.dirty.isEmpty) }
    }

    /// Changes taken by no snapshot yet: services and slices.
    public var pendingChanges: ChangeCount { state.withLock { $0.pending } }

    // MARK: Lists

    /// A complete list of Services (the first, or a re-list after the watch's history was
    /// lost): replaces every Service.
    public func replaceServices(_ services: [ServiceName: Service?]) -> ChangeCount {
        state.withLock { state in
            let gone = Set(state.services.keys).subtracting(services.keys)
            state.dirty.formUnion(gone)
            state.dirty.formUnion(services.keys)
            state.services = services
            state.servicesListed = true
            state.everything = true
            state.pending.services += services.count + gone.count
            return ChangeCount(services: services.count + gone.count)
        }
    }

    /// A complete list of EndpointSlices: replaces every slice.
    public func replaceEndpointSlices(_ slices: [EndpointSliceObject]) -> ChangeCount {
        state.withLock { state in
            for service in state.slicesOfService.keys { state.dirty.insert(service) }
            state.slices = [:]
            state.slicesOfService = [:]
            for slice in slices { Self.insert(slice, into: &state) }
            state.slicesListed = true
            state.everything = true
            state.pending.endpointSlices += slices.count
            return ChangeCount(endpointSlices: slices.count)
        }
    }

    // MARK: Events

    /// A Service was added or modified.
    public func setService(_ name: ServiceName, _ service: Service?) -> ChangeCount {
        state.withLock { state in
            state.services[name] = .some(service)
            state.dirty.insert(name)
            state.pending.services += 1
            return ChangeCount(services: 1)
        }
    }

    /// A Service was deleted.
    public func removeService(_ name: ServiceName) -> ChangeCount {
        state.withLock { state in
            guard state.services.removeValue(forKey: name) != nil else { return ChangeCount() }
            state.dirty.insert(name)
            state.pending.services += 1
            return ChangeCount(services: 1)
        }
    }

    /// An EndpointSlice was added or modified.
    public func setEndpointSlice(_ slice: EndpointSliceObject) -> ChangeCount {
        state.withLock { state in
            Self.remove(key: Self.key(slice.namespace, slice.name), from: &state)
            Self.insert(slice, into: &state)
            if let time = slice.lastChangeTriggerTime { state.triggerTimes.append(time) }
            state.pending.endpointSlices += 1
            return ChangeCount(endpointSlices: 1)
        }
    }

    /// An EndpointSlice was deleted.
    public func removeEndpointSlice(namespace: String, name: String) -> ChangeCount {
        state.withLock { state in
            guard Self.remove(key: Self.key(namespace, name), from: &state) else { return ChangeCount() }
            state.pending.endpointSlices += 1
            return ChangeCount(endpointSlices: 1)
        }
    }

    // MARK: Snapshots

    public func takeSnapshot() -> ServiceSnapshot? {
        state.withLock { state in
            guard state.ready else { return nil }
            let changed = state.dirty
            let updates = changed.map { name -> (name: ServiceName, service: Service?) in
                guard case .some(.some(let service)) = state.services[name] else { return (name, nil) }
                let slices = (state.slicesOfService[name] ?? []).compactMap { state.slices[$0] }
                return (name, KubeObjectDecoder.assemble(service, slices: slices))
            }
            ServedServices.update(&state.served, with: updates)
            let snapshot = ServiceSnapshot(map: ServiceMap(sortedServices: state.served),
                                           changed: state.everything ? nil : changed, triggerTimes: state.triggerTimes)
            state.dirty = []
            state.triggerTimes = []
            state.everything = false
            state.pending = ChangeCount()
            return snapshot
        }
    }

    public func restore(_ snapshot: ServiceSnapshot) {
        state.withLock { state in
            if let changed = snapshot.changed { state.dirty.formUnion(changed) } else { state.everything = true }
            state.triggerTimes += snapshot.triggerTimes
        }
    }

    // MARK: Slice index

    private static func key(_ namespace: String, _ name: String) -> String { "\(namespace)/\(name)" }

    private static func insert(_ slice: EndpointSliceObject, into state: inout State) {
        let key = key(slice.namespace, slice.name)
        state.slices[key] = slice
        if let service = slice.service {
            state.slicesOfService[service, default: []].insert(key)
            state.dirty.insert(service)
        }
    }

    @discardableResult
    private static func remove(key: String, from state: inout State) -> Bool {
        guard let old = state.slices.removeValue(forKey: key) else { return false }
        if let service = old.service {
            state.slicesOfService[service]?.remove(key)
            if state.slicesOfService[service]?.isEmpty == true { state.slicesOfService[service] = nil }
            state.dirty.insert(service)
        }
        return true
    }
}
