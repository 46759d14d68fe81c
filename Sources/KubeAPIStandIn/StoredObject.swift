import Foundation
import NIOCore

/// One object as the stand-in keeps it: its JSON bytes, once, as watch events and GETs send
/// them (`{"kind":...,"apiVersion":...,` then the other members); a list item is the same
/// bytes without kind and apiVersion, as a real API server lists them.
struct StoredObject: Sendable {
    let resource: ServedResource
    let namespace: String
    let name: String
    let labels: [String: String]
    let resourceVersion: Int
    let uid: String
    let creationTimestamp: String
    /// The object with `kind` and `apiVersion`, compact (no whitespace between tokens).
    let json: [UInt8]
    /// Where the members after `kind` and `apiVersion` start in `json`.
    private let itemStart: Int

    /// The object without `kind` and `apiVersion`, as an item of a list: `{` and the rest of `json`.
    var itemJSON: [UInt8] { [UInt8(ascii: "{")] + json[itemStart...] }
    /// The byte count of `itemJSON`.
    var itemByteCount: Int { json.count - itemStart + 1 }

    /// Appends `itemJSON` to `buffer` without building it.
    func writeItem(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "{"))
        buffer.writeBytes(json[itemStart...])
    }

    /// The store's ordering key, as etcd orders keys: namespace, then name.
    var key: String { StoredObject.key(namespace: namespace, name: name) }

    /// Builds the stored form of `incoming` at `resourceVersion`: sets kind, apiVersion,
    /// metadata.resourceVersion, and a uid and creationTimestamp when missing (`previous`
    /// keeps those of an update). The other members are kept as they are, in their order,
    /// without the whitespace between tokens.
    init(_ incoming: IncomingObject, resourceVersion: Int, previous: StoredObject?) {
        let uid = incoming.uid ?? previous?.uid ?? UUID().uuidString.lowercased()
        let creationTimestamp = incoming.creationTimestamp ?? previous?.creationTimestamp ?? StoredObject.timestamp()
        let resource = incoming.resource
        let reader = incoming.reader
        var out: [UInt8] = []
        out.reserveCapacity(reader.bytes.count + 128)
        out.append(contentsOf: "{\"kind\":".utf8)
        JSONBytes.appendString(resource.kind, to: &out)
        out.append(contentsOf: ",\"apiVersion\":".utf8)
        JSONBytes.appendString(resource.apiVersion, to: &out)
        out.append(UInt8(ascii: ","))
        itemStart = out.count
        var first = true
        for member in incoming.members where member.key != "kind" && member.key != "apiVersion" {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            JSONBytes.appendString(member.key, to: &out)
            out.append(UInt8(ascii: ":"))
            if member.key == "metadata" {
                StoredObject.appendMetadata(incoming.metadata, reader: reader, replacing: [
                    "resourceVersion": String(resourceVersion), "uid": uid, "creationTimestamp": creationTimestamp,
                ], to: &out)
            } else {
                reader.appendCompact(member.value, to: &out)
            }
        }
        out.append(UInt8(ascii: "}"))
        self.resource = resource
        self.namespace = incoming.namespace
        self.name = incoming.name
        self.labels = incoming.labels
        self.resourceVersion = resourceVersion
        self.uid = uid
        self.creationTimestamp = creationTimestamp
        self.json = out
    }

    /// The metadata object with the members named in `replacing` set to those strings
    /// (in place when present, at the end otherwise) and the others as they are.
    private static func appendMetadata(_ metadata: [JSONMember], reader: JSONBytes, replacing: [String: String],
                                       to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        var written: Set<String> = []
        for member in metadata {
            if !written.isEmpty { out.append(UInt8(ascii: ",")) }
            written.insert(member.key)
            JSONBytes.appendString(member.key, to: &out)
            out.append(UInt8(ascii: ":"))
            if let value = replacing[member.key] {
                JSONBytes.appendString(value, to: &out)
            } else {
                reader.appendCompact(member.value, to: &out)
            }
        }
        for key in ["resourceVersion", "uid", "creationTimestamp"] where !written.contains(key) {
            guard let value = replacing[key] else { continue }
            if !written.isEmpty { out.append(UInt8(ascii: ",")) }
            written.insert(key)
            JSONBytes.appendString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONBytes.appendString(value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// Checks the namespace against the resource's scope.
    static func checkScope(resource: ServedResource, namespace: String, name: String) throws(StandInError) {
        if resource.namespaced && namespace.isEmpty {
            throw StandInError.badObject("\(resource.kind) \(name) without metadata.namespace")
        }
        if !resource.namespaced && !namespace.isEmpty {
            throw StandInError.badObject("\(resource.kind) \(name) is cluster-scoped but has a namespace")
        }
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
