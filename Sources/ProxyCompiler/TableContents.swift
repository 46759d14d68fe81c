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
    /// externalTrafficPolicy Local, external traffic to an externalIP / LB IP: chain
    /// `local-lb-N` (source kept), map `local-backends-N` of this node's endpoints.
    case local(Int)
    /// externalTrafficPolicy Local, external traffic to a NodePort: chain
    /// `nodeport-local-lb-N` (source kept), map `nodeport-local-backends-N`.
    case nodePortLocal(Int)
    /// externalTrafficPolicy Local, a pod's traffic to a NodePort (short-circuit to every
    /// endpoint): chain `nodeport-direct-lb-N` (source kept), map `nodeport-backends-N`.
    case nodePortDirect(Int)

    var isNodePort: Bool {
        switch self {
        case .nodePort, .nodePortLocal, .nodePortDirect: return true
        case .service, .external, .local: return false
        }
    }

    var chainName: String {
        switch self {
        case .service(let count): return RulesetLayout.ChainName.serviceBalancer(count)
        case .external(let count): return RulesetLayout.ChainName.externalBalancer(count)
        case .nodePort(let count): return RulesetLayout.ChainName.nodePortBalancer(count)
        case .local(let count): return RulesetLayout.ChainName.localBalancer(count)
        case .nodePortLocal(let count): return RulesetLayout.ChainName.nodePortLocalBalancer(count)
        case .nodePortDirect(let count): return RulesetLayout.ChainName.nodePortDirectBalancer(count)
        }
    }

    var mapName: String {
        switch self {
        case .service(let count), .external(let count): return RulesetLayout.SetName.serviceBackends(count)
        case .nodePort(let count), .nodePortDirect(let count): return RulesetLayout.SetName.nodePortBackends(count)
        case .local(let count): return RulesetLayout.SetName.localBackends(count)
        case .nodePortLocal(let count): return RulesetLayout.SetName.nodePortLocalBackends(count)
        }
    }

    /// The N of the `service-backends-N` map this bucket uses, if it uses one.
    var serviceBackendsCount: Int? {
        switch self {
        case .service(let count), .external(let count): return count
        case .nodePort, .local, .nodePortLocal, .nodePortDirect: return nil
        }
    }

    /// The N of the `nodeport-backends-N` map this bucket uses, if it uses one.
    var nodePortBackendsCount: Int? {
        switch self {
        case .nodePort(let count), .nodePortDirect(let count): return count
        case .service, .external, .local, .nodePortLocal: return nil
        }
    }
}

/// The sets a frontend's dispatch element can go to.
enum DispatchSet: Hashable, CaseIterable {
    static let allCases: [DispatchSet] = [.serviceIPs, .serviceNodePorts, .noEndpointServices, .noEndpointNodePorts,
                                          .localPolicyIPs, .localPolicyNodePorts, .shortCircuitIPs, .shortCircuitNodePorts,
                                          .sourceRangeIPs] + AffinityPath.allCases.map(DispatchSet.affinityBuckets)

    case serviceIPs, serviceNodePorts, noEndpointServices, noEndpointNodePorts
    /// externalTrafficPolicy Local: where external traffic goes, and where pods' and the
    /// node's own traffic goes (every endpoint).
    case localPolicyIPs, localPolicyNodePorts, shortCircuitIPs, shortCircuitNodePorts
    /// loadBalancerSourceRanges: where an allowed source goes on.
    case sourceRangeIPs
    /// sessionAffinity: the bucket chain a frontend goes to when its client has no entry.
    case affinityBuckets(AffinityPath)

    var setName: String {
        switch self {
        case .localPolicyIPs: return RulesetLayout.SetName.localPolicyIPs
        case .localPolicyNodePorts: return RulesetLayout.SetName.localPolicyNodePorts
        case .shortCircuitIPs: return RulesetLayout.SetName.shortCircuitIPs
        case .shortCircuitNodePorts: return RulesetLayout.SetName.shortCircuitNodePorts
        case .sourceRangeIPs: return RulesetLayout.SetName.sourceRangeIPs
        case .affinityBuckets(let path): return path.bucketsMapName
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
    /// Its elements in the dispatch maps or no-endpoint sets (one with policy Cluster).
    var dispatch: [(set: DispatchSet, element: SetElement)]
    /// The buckets it balances through, each with its elements in the bucket's backends map.
    var buckets: [(bucket: Bucket, backends: [SetElement])] = []
    /// The shared policy chains it goes through.
    var shapes: [PolicyChain] = []
    /// Its elements in other sets (session affinity's validation set), by set name.
    var extras: [(map: String, elements: [SetElement])] = []
    /// Its element in `frontend-digests` or `nodeport-digests` (with backends only).
    var digest: SetElement?
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
    /// The shared policy chains (with their maps) that exist.
    var shapes = Set<PolicyChain>()
    /// Elements of `source-ranges` (each once).
    var sourceRanges: [SetElement] = []
    var dispatch: [DispatchSet: [SetElement]] = [:]
    /// Elements of the backends maps, by map name.
    var backends: [String: [SetElement]] = [:]
    /// Elements of `frontend-digests` and `nodeport-digests`.
    var digests: [SetElement] = []
    var nodePortDigests: [SetElement] = []
    /// How many elements each set holds in the whole table, by set name, when the contents
    /// are only part of it (the sizes the sets are declared with depend on it); nil: these
    /// contents are the whole table.
    var counts: [String: Int]? = nil

    mutating func add(_ entries: FrontendEntries) {
        for (set, element) in entries.dispatch { dispatch[set, default: []].append(element) }
        for (bucket, elements) in entries.buckets { backends[bucket.mapName, default: []] += elements }
        for (map, elements) in entries.extras { backends[map, default: []] += elements }
        // NodePort keys are `protocol . port`; the others start with an address.
        if let digest = entries.digest {
            if digest.key.count == 2 { nodePortDigests.append(digest) } else { digests.append(digest) }
        }
    }
}
