/// A resource type the stand-in serves, with what discovery says about it.
public struct ServedResource: Sendable, Hashable {
    /// Plural name used in paths, e.g. `endpointslices`.
    public var plural: String
    /// Singular name, e.g. `endpointslice`.
    public var singular: String
    /// Kind of its objects, e.g. `EndpointSlice`.
    public var kind: String
    /// API group; "" for the core group.
    public var group: String
    /// Version, e.g. `v1`.
    public var version: String
    /// Whether objects live in namespaces.
    public var namespaced: Bool
    /// Short names kubectl accepts, e.g. `svc`.
    public var shortNames: [String]

    /// `v1` or `discovery.k8s.io/v1`.
    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    /// `/api/v1` or `/apis/discovery.k8s.io/v1`.
    public var groupVersionPath: String { group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)" }
    /// The cluster-wide collection path, e.g. `/api/v1/services`.
    public var collectionPath: String { "\(groupVersionPath)/\(plural)" }

    /// Services (core/v1).
    public static let services = ServedResource(plural: "services", singular: "service", kind: "Service",
                                                group: "", version: "v1", namespaced: true, shortNames: ["svc"])
    /// Nodes (core/v1, cluster-scoped).
    public static let nodes = ServedResource(plural: "nodes", singular: "node", kind: "Node",
                                             group: "", version: "v1", namespaced: false, shortNames: ["no"])
    /// Namespaces (core/v1, cluster-scoped).
    public static let namespaces = ServedResource(plural: "namespaces", singular: "namespace", kind: "Namespace",
                                                  group: "", version: "v1", namespaced: false, shortNames: ["ns"])
    /// EndpointSlices (discovery.k8s.io/v1).
    public static let endpointSlices = ServedResource(plural: "endpointslices", singular: "endpointslice",
                                                      kind: "EndpointSlice", group: "discovery.k8s.io", version: "v1",
                                                      namespaced: true, shortNames: [])

    /// Everything the stand-in serves.
    public static let all: [ServedResource] = [.services, .nodes, .namespaces, .endpointSlices]
}
