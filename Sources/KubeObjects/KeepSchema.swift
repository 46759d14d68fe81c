/// Which parts of a document the parsers build into ``Value``s; everything else is only
/// checked for syntax and skipped.
///
/// The decoders read a few fields of each object (see ``KubeObjectDecoder``); real objects
/// carry much more (`managedFields`, the `last-applied-configuration` annotation, `targetRef`,
/// ...). Building only what is read keeps parsing near scanner speed and memory small.
indirect enum Keep: Sendable {
    /// The whole value.
    case everything
    /// An object of which only `members` are kept (each by its own schema). A value of
    /// another shape here is kept as a scalar, or as an empty list/object of its shape, which
    /// is all the decoders' type errors need.
    case object([String: Keep])
    /// A list whose elements are kept by `element`.
    case list(Keep)
    /// A Kubernetes object (or a List of them): ``kubernetesObjectMembers``.
    case kubernetesObject

    /// The members of an object schema (resolving ``kubernetesObject``); nil for other schemas.
    var members: [String: Keep]? {
        switch self {
        case .object(let members): return members
        case .kubernetesObject: return Keep.kubernetesObjectMembers
        case .everything, .list: return nil
        }
    }

    /// What the decoders read of any object: the union over Services, EndpointSlices, Lists
    /// and the metadata used in notices about other kinds.
    static let kubernetesObjectMembers: [String: Keep] = [
        "apiVersion": .everything,
        "kind": .everything,
        "metadata": .object([
            "name": .everything,
            "namespace": .everything,
            "labels": .everything,
            "annotations": .object(Dictionary(uniqueKeysWithValues: keptAnnotations.map { ($0, Keep.everything) })),
        ]),
        "spec": .everything,
        "status": .object(["loadBalancer": .everything]),
        // EndpointSlice
        "addressType": .everything,
        "ports": .everything,
        "endpoints": .list(.object([
            "addresses": .everything,
            "conditions": .everything,
            "nodeName": .everything,
            "zone": .everything,
            "hints": .everything,
        ])),
        // List, ServiceList, ...
        "items": .list(.kubernetesObject),
    ]

    /// Annotations with a meaning for nftproxy; all others (such as the kilobytes of
    /// `kubectl.kubernetes.io/last-applied-configuration`) are skipped.
    static let keptAnnotations = [
        WellKnown.loadBalancerSourceRangesAnnotation,
        "endpoints.kubernetes.io/last-change-trigger-time",
    ]
}
