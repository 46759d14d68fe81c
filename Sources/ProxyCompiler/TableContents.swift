import Nftables
import ServiceModel

/// A load-balancing bucket: the chain that DNATs frontends of one kind with `count`
/// endpoints, and the backends map it picks from (`RulesetLayout` names both).
enum Bucket: Hashable {
    /// ClusterIP frontends: chain `service-lb-N`, map `service-backends-N`.
    case service(Int)
    /// externalIP / LoadBalancer frontends: chain `external-lb-N` (masquerades), map `service-backends-N`.
    case external(Int)
    /// NodePorts: chain `nodeport-lb-N`, map `nodeport-backends-N`.
    case nodePort(Int)

    var isNodePort: Bool { if case .nodePort = self { return true } else { return false } }

    var chainName: String {
        switch self {
        case .service(let count): return RulesetLayout.ChainName.serviceBalancer(count)
        case .external(let count): return RulesetLayout.ChainName.externalBalancer(count)
        case .nodePort(let count): return RulesetLayout.ChainName.nodePortBalancer(count)
        }
    }

    var mapName: String {
        switch self {
        case .service(let count), .external(let count): return RulesetLayout.SetName.serviceBackends(count)
        case .nodePort(let count): return RulesetLayout.SetName.nodePortBackends(count)
        }
    }

    /// The N of the `service-backends-N` map this bucket uses, if it uses one.
    var serviceBackendsCount: Int? {
        switch self {
        case .service(let count), .external(let count): return count
        case .nodePort: return nil
        }
    }
}

/// The sets a frontend's dispatch element can go to.
enum DispatchSet: Hashable, CaseIterable {
    case serviceIPs, serviceNodePorts, noEndpointServices, noEndpointNodePorts

    var setName: String {
        switch self {
        case .serviceIPs: return RulesetLayout.SetName.serviceIPs
        case .serviceNodePorts: return RulesetLayout.SetName.serviceNodePorts
        case .noEndpointServices: return RulesetLayout.SetName.noEndpointServices
        case .noEndpointNodePorts: return RulesetLayout.SetName.noEndpointNodePorts
        }
    }
}

/// The elements one frontend puts into its family's table, apart from the shared ones
/// (its ClusterIP in `cluster-ips`, its local endpoints in `hairpin-endpoints`).
struct FrontendEntries {
    /// Where `element` goes: the dispatch maps, or the no-endpoint sets.
    var dispatch: DispatchSet
    var element: SetElement
    /// The frontend's bucket and its elements in the bucket's backends map (none without endpoints).
    var bucket: Bucket? = nil
    var backends: [SetElement] = []
}

/// What goes into one family's table besides its fixed chains: the elements of every set
/// and the buckets that exist. The compiler fills it with everything; `CompiledServices`
/// with only what a change touched (all buckets declared, so that the table diff of two
/// such partial tables leaves everything else alone).
struct TableContents {
    var clusterIPs: [IPAddress] = []
    /// Endpoint addresses that may be on this node (`hairpin-endpoints`).
    var localEndpoints: [IPAddress] = []
    var buckets = Set<Bucket>()
    var dispatch: [DispatchSet: [SetElement]] = [:]
    /// Elements of the backends maps, by map name.
    var backends: [String: [SetElement]] = [:]
    /// How many elements each set holds in the whole table, by set name, when the contents
    /// are only part of it (the sizes the sets are declared with depend on it); nil: these
    /// contents are the whole table.
    var counts: [String: Int]? = nil

    mutating func add(_ entries: FrontendEntries) {
        dispatch[entries.dispatch, default: []].append(entries.element)
        if let bucket = entries.bucket { backends[bucket.mapName, default: []] += entries.backends }
    }
}
