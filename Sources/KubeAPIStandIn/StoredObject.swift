import Foundation

/// One object as the stand-in keeps it: serialised once for watch events and GETs (with kind
/// and apiVersion) and once as a list item (without them, as a real API server lists them).
struct StoredObject: Sendable {
    let resource: ServedResource
    let namespace: String
    let name: String
    let labels: [String: String]
    let resourceVersion: Int
    let uid: String
    let creationTimestamp: String
    /// The object with `kind` and `apiVersion`.
    let json: [UInt8]
    /// The object without `kind` and `apiVersion`, as an item of a list.
    let itemJSON: [UInt8]

    /// The store's ordering key, as etcd orders keys: namespace, then name.
    var key: String { StoredObject.key(namespace: namespace, name: name) }

    /// Builds the stored form of `object` at `resourceVersion`: sets kind, apiVersion,
    /// metadata.resourceVersion, and a uid and creationTimestamp when missing (`previous`
    /// keeps those of an update).
    init(resource: ServedResource, object: [String: Any], resourceVersion: Int,
         previous: StoredObject?) throws(StandInError) {
        var object = object
        let (namespace, name) = try StoredObject.identity(of: object, resource: resource)
        var metadata = object["metadata"] as? [String: Any] ?? [:]
        metadata["resourceVersion"] = String(resourceVersion)
        let uid = metadata["uid"] as? String ?? previous?.uid ?? UUID().uuidString.lowercased()
        let creationTimestamp = metadata["creationTimestamp"] as? String ?? previous?.creationTimestamp ?? StoredObject.timestamp()
        metadata["uid"] = uid
        metadata["creationTimestamp"] = creationTimestamp
        object["metadata"] = metadata
        object["kind"] = resource.kind
        object["apiVersion"] = resource.apiVersion
        var labels: [String: String] = [:]
        for (key, value) in metadata["labels"] as? [String: Any] ?? [:] {
            guard let value = value as? String else {
                throw StandInError.badObject("\(resource.kind) \(name): label \(key) is not a string")
            }
            labels[key] = value
        }
        self.resource = resource
        self.namespace = namespace
        self.name = name
        self.labels = labels
        self.resourceVersion = resourceVersion
        self.uid = uid
        self.creationTimestamp = creationTimestamp
        do {
            json = [UInt8](try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes]))
            object["kind"] = nil
            object["apiVersion"] = nil
            itemJSON = [UInt8](try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes]))
        } catch {
            throw StandInError.badObject("\(resource.kind) \(name) cannot be serialised: \(error)")
        }
    }

    /// The namespace and name of `object`, checked against the resource's scope.
    static func identity(of object: [String: Any], resource: ServedResource) throws(StandInError) -> (namespace: String, name: String) {
        guard let metadata = object["metadata"] as? [String: Any],
              let name = metadata["name"] as? String, !name.isEmpty else {
            throw StandInError.badObject("\(resource.kind) without metadata.name")
        }
        let namespace = metadata["namespace"] as? String ?? ""
        if resource.namespaced && namespace.isEmpty {
            throw StandInError.badObject("\(resource.kind) \(name) without metadata.namespace")
        }
        if !resource.namespaced && !namespace.isEmpty {
            throw StandInError.badObject("\(resource.kind) \(name) is cluster-scoped but has a namespace")
        }
        return (namespace, name)
    }

    static func key(namespace: String, name: String) -> String {
        namespace.isEmpty ? name : "\(namespace)/\(name)"
    }

    static func timestamp() -> String {
        Date().formatted(.iso8601)
    }

}

/// A change kept in the store's history, so watches can resume from an older resourceVersion
/// and pages of a list can be served from the snapshot they started at.
struct StoredChange: Sendable {
    enum Kind: String, Sendable {
        case added = "ADDED", modified = "MODIFIED", deleted = "DELETED"
    }
    let kind: Kind
    let resourceVersion: Int
    /// The object after the change (for DELETED: the last state, with the deletion's resourceVersion).
    let object: StoredObject
    /// The object before the change; nil for ADDED.
    let previous: StoredObject?
}

/// Misuse of the stand-in's test-facing API.
public enum StandInError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An object that cannot be stored (missing name, wrong namespace use, not JSON ...).
    case badObject(String)
    /// The resource is not one the stand-in serves.
    case unknownResource(String)
    /// The object to delete or modify does not exist.
    case notFound(String)
    /// The server could not start (port, certificates ...).
    case startup(String)

    public var description: String {
        switch self {
        case .badObject(let text): return "bad object: \(text)"
        case .unknownResource(let text): return "unknown resource: \(text)"
        case .notFound(let text): return "not found: \(text)"
        case .startup(let text): return "cannot start: \(text)"
        }
    }
}
