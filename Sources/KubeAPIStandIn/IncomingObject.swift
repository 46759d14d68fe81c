import Foundation

/// An object handed to the store, read but not yet stored: the byte ranges of its members
/// and the fields the store needs (identity, labels, what a stored form keeps).
struct IncomingObject {
    let resource: ServedResource
    let reader: JSONBytes
    /// The top-level members in their order; a key given twice is kept once (its last value),
    /// as Go's decoder reads it.
    let members: [JSONMember]
    /// The members of `metadata`, the same way.
    let metadata: [JSONMember]
    let namespace: String
    let name: String
    let labels: [String: String]
    /// `metadata.uid` and `metadata.creationTimestamp` when given as strings.
    let uid: String?
    let creationTimestamp: String?

    /// The store's key of the object.
    var key: String { StoredObject.key(namespace: namespace, name: name) }

    /// Reads the JSON object `json` as an object of `resource`.
    init(resource: ServedResource, json: [UInt8]) throws(StandInError) {
        let reader = JSONBytes(bytes: json)
        let members: [JSONMember]
        let metadata: [JSONMember]?
        do throws(JSONBytesError) {
            members = IncomingObject.lastOfEachKey(try reader.rootMembers())
            metadata = try members.first(where: { $0.key == "metadata" }).flatMap { member throws(JSONBytesError) in
                try reader.members(of: member.value)
            }.map(IncomingObject.lastOfEachKey)
        } catch {
            throw StandInError.badObject("\(resource.kind): not a JSON object: \(error)")
        }
        guard let metadata else { throw StandInError.badObject("\(resource.kind) without metadata.name") }
        func string(_ key: String) throws(StandInError) -> String? {
            guard let range = metadata.first(where: { $0.key == key })?.value else { return nil }
            do throws(JSONBytesError) {
                return try reader.string(at: range)
            } catch {
                throw StandInError.badObject("\(resource.kind): metadata.\(key): \(error)")
            }
        }
        guard let name = try string("name"), !name.isEmpty else {
            throw StandInError.badObject("\(resource.kind) without metadata.name")
        }
        let namespace = try string("namespace") ?? ""
        try StoredObject.checkScope(resource: resource, namespace: namespace, name: name)
        var labels: [String: String] = [:]
        if let range = metadata.first(where: { $0.key == "labels" })?.value {
            let entries: [JSONMember]
            do throws(JSONBytesError) {
                entries = try reader.members(of: range) ?? []
            } catch {
                throw StandInError.badObject("\(resource.kind) \(name): metadata.labels: \(error)")
            }
            for label in entries {
                let value: String?
                do throws(JSONBytesError) {
                    value = try reader.string(at: label.value)
                } catch {
                    throw StandInError.badObject("\(resource.kind) \(name): label \(label.key): \(error)")
                }
                guard let value else {
                    throw StandInError.badObject("\(resource.kind) \(name): label \(label.key) is not a string")
                }
                labels[label.key] = value
            }
        }
        self.resource = resource
        self.reader = reader
        self.members = members
        self.metadata = metadata
        self.namespace = namespace
        self.name = name
        self.labels = labels
        self.uid = try string("uid")
        self.creationTimestamp = try string("creationTimestamp")
    }

    /// Reads `object` (a JSONSerialization dictionary), serialised once.
    init(resource: ServedResource, object: [String: Any]) throws(StandInError) {
        let json: [UInt8]
        do {
            json = [UInt8](try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes]))
        } catch {
            throw StandInError.badObject("\(resource.kind) cannot be serialised: \(error)")
        }
        try self.init(resource: resource, json: json)
    }

    /// `members` with each key once, at the place of its last occurrence.
    private static func lastOfEachKey(_ members: [JSONMember]) -> [JSONMember] {
        var seen: Set<String> = []
        var kept: [JSONMember] = []
        for member in members.reversed() where seen.insert(member.key).inserted {
            kept.append(member)
        }
        return kept.reversed()
    }
}
