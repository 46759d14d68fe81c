/// One Kubernetes object as the API server sent it: its JSON bytes, untouched (a slice of the
/// response, not re-serialised), plus the envelope fields a consumer needs before decoding.
public struct RawObject: Sendable, Equatable {
    /// The object's JSON text, exactly as received.
    public var json: ArraySlice<UInt8>
    /// `kind`, e.g. `Service` (taken from the list's kind when list items carry none).
    public var kind: String
    /// `metadata.namespace`; empty for cluster-scoped objects.
    public var namespace: String
    /// `metadata.name`.
    public var name: String
    /// `metadata.resourceVersion`.
    public var resourceVersion: String

    /// Creates a raw object; see the properties for the meaning of each part.
    public init(json: ArraySlice<UInt8>, kind: String, namespace: String, name: String, resourceVersion: String) {
        self.json = json
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.resourceVersion = resourceVersion
    }

    /// `namespace/name`, or `name` for cluster-scoped objects.
    public var key: String { namespace.isEmpty ? name : "\(namespace)/\(name)" }
}

/// One page of a list response.
public struct ListPage: Sendable, Equatable {
    /// The list's kind, e.g. `ServiceList`.
    public var kind: String
    /// The items of this page, in the server's order.
    public var items: [RawObject]
    /// `metadata.resourceVersion` of the list: where a watch continues from.
    public var resourceVersion: String
    /// `metadata.continue`: the token for the next page; nil on the last page.
    public var continueToken: String?
    /// `metadata.remainingItemCount`, when the server sends it.
    public var remainingItemCount: Int?
}

/// One event of a watch stream.
public enum WatchEvent: Sendable, Equatable {
    case added(RawObject)
    case modified(RawObject)
    case deleted(RawObject)
    /// A BOOKMARK: nothing changed, but the stream has reached this resourceVersion.
    case bookmark(resourceVersion: String)
    /// An ERROR event; the object is a Status (410 Expired when the watch's resourceVersion
    /// is too old).
    case error(APIStatus)
}

/// A `Status` object as the API server sends it with errors.
public struct APIStatus: Sendable, Equatable {
    /// `code`, the HTTP status it stands for (410 for Expired).
    public var code: Int
    /// `reason`, e.g. `Expired`, `Forbidden`.
    public var reason: String
    /// `message`, human-readable.
    public var message: String

    /// Creates a status.
    public init(code: Int, reason: String, message: String) {
        self.code = code
        self.reason = reason
        self.message = message
    }
}
