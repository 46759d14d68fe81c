import Foundation
import NIOConcurrencyHelpers

/// Which objects a list or watch covers.
struct ObjectFilter: Sendable {
    var resource: ServedResource
    /// Only this namespace (a namespaced path); nil for all.
    var namespace: String?
    var labels: LabelSelector? = nil
    var fields: FieldSelector? = nil

    func matches(_ object: StoredObject) -> Bool {
        (namespace == nil || object.namespace == namespace)
            && (labels?.matches(object.labels) ?? true)
            && (fields?.matches(name: object.name, namespace: object.namespace) ?? true)
    }
}

/// What a watcher is sent.
enum WatchDelivery: Sendable {
    case event(type: String, object: StoredObject)
    case bookmark(resourceVersion: Int)
    /// An ERROR event with a 410 Expired Status, then the end of the stream.
    case expired(message: String)
    /// The connection is closed without ending the response (a dropped stream).
    case drop
}

/// One page (or all) of a list.
struct ListResult: Sendable {
    var items: [StoredObject]
    var resourceVersion: Int
    var continueToken: String?
    var remainingItemCount: Int?
}

/// Why a list cannot be served.
enum ListFailure: Error, Sendable {
    /// 410: the continue token or resourceVersion is older than the compacted history.
    case expired(String)
    /// 400: a continue token that is not one of ours.
    case badRequest(String)
}

/// The stand-in's objects and their history, guarded by a lock: the HTTP handlers read it from
/// the event loop, tests change it from their own threads, and watchers are told of each change
/// while the lock is held, so every watcher sees changes in resourceVersion order.
final class ObjectStore: Sendable {
    private struct Watcher {
        var filter: ObjectFilter
        var bookmarks: Bool
        var deliver: @Sendable (WatchDelivery) -> Void
    }

    private struct State {
        var revision = 1
        var objects: [String: [String: StoredObject]] = [:]
        /// The keys of `objects` of each resource, sorted (the order of lists and pages).
        var sortedKeys: [String: [String]] = [:]
        /// Changes after `compactedRevision`, oldest first: `changes` from `historyStart` on
        /// (older ones are dropped in batches, so that keeping the limit costs no copy per change).
        var changes: [StoredChange] = []
        var historyStart = 0
        var history: ArraySlice<StoredChange> { changes[historyStart...] }
        var compactedRevision = 1
        var watchers: [Int: Watcher] = [:]
        var nextWatcher = 0
    }

    private let state = NIOLockedValueBox(State())
    /// Changes kept at most; older ones are compacted away as etcd does.
    let historyLimit: Int

    init(historyLimit: Int) {
        self.historyLimit = historyLimit
    }

    var revision: Int { state.withLockedValue { $0.revision } }

    // MARK: Changes

    /// Creates or replaces an object; watchers get ADDED or MODIFIED.
    @discardableResult
    func put(_ incoming: IncomingObject) -> StoredObject {
        let resource = incoming.resource
        let key = incoming.key
        return state.withLockedValue { state in
            let previous = state.objects[resource.plural]?[key]
            let revision = state.revision + 1
            let stored = StoredObject(incoming, resourceVersion: revision, previous: previous)
            state.revision = revision
            state.objects[resource.plural, default: [:]][key] = stored
            if previous == nil {
                // In place: a copy of the key list per object would make loading quadratic.
                let index = Self.firstIndex(after: key, in: state.sortedKeys[resource.plural] ?? [], inclusive: true)
                state.sortedKeys[resource.plural, default: []].insert(key, at: index)
            }
            record(StoredChange(kind: previous == nil ? .added : .modified, resourceVersion: revision,
                                object: stored, previous: previous), in: &state)
            return stored
        }
    }

    /// Deletes an object; watchers get DELETED with its last state.
    func delete(_ resource: ServedResource, namespace: String, name: String) throws(StandInError) {
        let key = namespace.isEmpty ? name : "\(namespace)/\(name)"
        let result: Result<Void, StandInError> = state.withLockedValue { state in
            guard let previous = state.objects[resource.plural]?[key] else {
                return .failure(StandInError.notFound("\(resource.kind) \(key)"))
            }
            let revision = state.revision + 1
            state.revision = revision
            state.objects[resource.plural]?[key] = nil
            let index = Self.firstIndex(after: key, in: state.sortedKeys[resource.plural] ?? [], inclusive: true)
            if state.sortedKeys[resource.plural]?[index...].first == key {
                state.sortedKeys[resource.plural]?.remove(at: index)
            }
            // The DELETED event carries the last state at the deletion's resourceVersion.
            let last = (try? IncomingObject(resource: resource, json: previous.json))
                .map { StoredObject($0, resourceVersion: revision, previous: previous) } ?? previous
            record(StoredChange(kind: .deleted, resourceVersion: revision, object: last, previous: previous), in: &state)
            return .success(())
        }
        try result.get()
    }

    private func record(_ change: StoredChange, in state: inout State) {
        state.changes.append(change)
        if state.changes.count - state.historyStart > historyLimit {
            state.historyStart = state.changes.count - historyLimit
            state.compactedRevision = state.changes[state.historyStart - 1].resourceVersion
            if state.historyStart >= max(historyLimit, 1024) {
                state.changes.removeFirst(state.historyStart)
                state.historyStart = 0
            }
        }
        for watcher in state.watchers.values {
            if let type = Self.eventType(of: change, for: watcher.filter) {
                watcher.deliver(.event(type: type, object: change.object))
            }
        }
    }

    /// The event a watcher with `filter` sees for `change`, if any: an object that starts to
    /// match is ADDED, one that stops matching is DELETED, as the API server's cacher does.
    private static func eventType(of change: StoredChange, for filter: ObjectFilter) -> String? {
        guard change.object.resource == filter.resource else { return nil }
        let before = change.previous.map(filter.matches) ?? false
        let after = change.kind != .deleted && filter.matches(change.object)
        switch (change.kind, before, after) {
        case (.deleted, true, _): return "DELETED"
        case (.deleted, false, _): return nil
        case (_, false, true): return "ADDED"
        case (_, true, true): return "MODIFIED"
        case (_, true, false): return "DELETED"
        default: return nil
        }
    }

    /// Forgets the history: watches and continue tokens from before now get 410 Expired.
    func compact() {
        state.withLockedValue { state in
            state.compactedRevision = state.revision
            state.changes.removeAll()
            state.historyStart = 0
        }
    }

    // MARK: Reads

    /// A page of the objects matching `filter`, in key order, from the snapshot named by
    /// `continueToken` (or the current state).
    func list(_ filter: ObjectFilter, limit: Int?, continueToken: String?,
              resourceVersion: Int?) throws(ListFailure) -> ListResult {
        let result: Result<ListResult, ListFailure> = state.withLockedValue { state in
            do throws(ListFailure) {
                return .success(try Self.list(filter, limit: limit, continueToken: continueToken,
                                              resourceVersion: resourceVersion, state: state))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private static func list(_ filter: ObjectFilter, limit: Int?, continueToken: String?, resourceVersion: Int?,
                         state: State) throws(ListFailure) -> ListResult {
        var snapshotRevision = state.revision
        var startAfter: String?
        if let continueToken {
            let decoded = try ContinueToken(decoding: continueToken)
            snapshotRevision = decoded.resourceVersion
            startAfter = decoded.startAfter
        } else if let resourceVersion, resourceVersion > 0, limit != nil, resourceVersion < state.compactedRevision {
            throw ListFailure.expired("too old resource version: \(resourceVersion) (\(state.compactedRevision))")
        }
        guard snapshotRevision >= state.compactedRevision || snapshotRevision == state.revision else {
            throw ListFailure.expired("The provided continue parameter is too old to display a consistent list result. "
                + "You can start a new list without the continue parameter, or use the continue token in this response "
                + "to retrieve the remainder of the results. Continuing with the provided token results in an "
                + "inconsistent list - objects that were created, modified, or deleted between the time the first "
                + "chunk was returned and now may show up in the list.")
        }
        // The current state is kept sorted; an older snapshot (pages of a list that changed
        // meanwhile) is rebuilt from the history and sorted here.
        let snapshot: [String: StoredObject]
        let keys: [String]
        if snapshotRevision == state.revision {
            snapshot = state.objects[filter.resource.plural] ?? [:]
            keys = state.sortedKeys[filter.resource.plural] ?? []
        } else {
            snapshot = Self.snapshot(of: filter.resource, at: snapshotRevision, state: state)
            keys = snapshot.keys.sorted()
        }
        var index = startAfter.map { Self.firstIndex(after: $0, in: keys, inclusive: false) } ?? 0
        var items: [StoredObject] = []
        while index < keys.count, limit.map({ items.count < $0 }) ?? true {
            if let object = snapshot[keys[index]], filter.matches(object) { items.append(object) }
            index += 1
        }
        // A page ends with a token only if a later key matches.
        var more = index
        while more < keys.count, !(snapshot[keys[more]].map(filter.matches) ?? false) { more += 1 }
        guard let last = items.last, more < keys.count else {
            return ListResult(items: items, resourceVersion: snapshotRevision, continueToken: nil, remainingItemCount: nil)
        }
        let unfiltered = filter.labels == nil && filter.fields == nil && filter.namespace == nil
        return ListResult(items: items, resourceVersion: snapshotRevision,
                          continueToken: ContinueToken(resourceVersion: snapshotRevision, startAfter: last.key).encoded,
                          remainingItemCount: unfiltered ? keys.count - index : nil)
    }

    /// The index of the first key after `key` (or equal to it, when `inclusive`) in sorted `keys`.
    private static func firstIndex(after key: String, in keys: [String], inclusive: Bool) -> Int {
        var low = 0
        var high = keys.count
        while low < high {
            let middle = (low + high) / 2
            if keys[middle] < key || (!inclusive && keys[middle] == key) { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The objects of `resource` as they were at `revision` (which must not be compacted).
    private static func snapshot(of resource: ServedResource, at revision: Int, state: State) -> [String: StoredObject] {
        var objects = state.objects[resource.plural] ?? [:]
        for change in state.history.reversed() {
            guard change.resourceVersion > revision else { break }
            guard change.object.resource == resource else { continue }
            objects[change.object.key] = change.previous
        }
        return objects
    }

    /// One object, current state.
    func get(_ resource: ServedResource, key: String) -> StoredObject? {
        state.withLockedValue { $0.objects[resource.plural]?[key] }
    }

    // MARK: Watches

    /// Registers a watcher and returns its id and what it must be sent first: the changes
    /// after `resourceVersion`, or ADDED for every object when it is nil or 0, or a 410 when
    /// it is older than the history (then nothing is registered and the id is nil).
    func watch(_ filter: ObjectFilter, from resourceVersion: Int?, bookmarks: Bool,
               deliver: @escaping @Sendable (WatchDelivery) -> Void) -> (id: Int?, backlog: [WatchDelivery]) {
        state.withLockedValue { state in
            var backlog: [WatchDelivery] = []
            if let from = resourceVersion, from > 0 {
                if from < state.compactedRevision {
                    return (nil, [.expired(message: "too old resource version: \(from) (\(state.compactedRevision))")])
                }
                for change in state.history where change.resourceVersion > from {
                    if let type = Self.eventType(of: change, for: filter) {
                        backlog.append(.event(type: type, object: change.object))
                    }
                }
            } else {
                let objects = state.objects[filter.resource.plural] ?? [:]
                for key in state.sortedKeys[filter.resource.plural] ?? [] {
                    if let object = objects[key], filter.matches(object) {
                        backlog.append(.event(type: "ADDED", object: object))
                    }
                }
            }
            let id = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[id] = Watcher(filter: filter, bookmarks: bookmarks, deliver: deliver)
            return (id, backlog)
        }
    }

    /// Forgets a watcher (its connection ended).
    func unwatch(_ id: Int) {
        state.withLockedValue { _ = $0.watchers.removeValue(forKey: id) }
    }

    /// Sends every watcher that asked for bookmarks a BOOKMARK at the current resourceVersion.
    func sendBookmarks() {
        state.withLockedValue { state in
            for watcher in state.watchers.values where watcher.bookmarks {
                watcher.deliver(.bookmark(resourceVersion: state.revision))
            }
        }
    }

    /// Ends every watch with `delivery` (.drop or .expired) and forgets the watchers.
    /// Returns how many were ended.
    @discardableResult
    func endWatches(with delivery: WatchDelivery) -> Int {
        state.withLockedValue { state in
            let watchers = state.watchers
            state.watchers.removeAll()
            for watcher in watchers.values { watcher.deliver(delivery) }
            return watchers.count
        }
    }

    /// How many watches are open.
    var watcherCount: Int { state.withLockedValue { $0.watchers.count } }
}

/// The stand-in's continue token: base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":"KEY\u0000"}`,
/// the same shape as the API server's.
struct ContinueToken {
    var resourceVersion: Int
    /// The key of the last item returned; the next page starts after it.
    var startAfter: String

    init(resourceVersion: Int, startAfter: String) {
        self.resourceVersion = resourceVersion
        self.startAfter = startAfter
    }

    init(decoding token: String) throws(ListFailure) {
        guard let data = Data(base64Encoded: token),
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              object["v"] as? String == "meta.k8s.io/v1",
              let revision = object["rv"] as? Int, let start = object["start"] as? String, start.hasSuffix("\u{0}")
        else {
            throw ListFailure.badRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
        }
        resourceVersion = revision
        startAfter = String(start.dropLast())
    }

    var encoded: String {
        let object: [String: Any] = ["v": "meta.k8s.io/v1", "rv": resourceVersion, "start": startAfter + "\u{0}"]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return data.base64EncodedString()
    }
}
