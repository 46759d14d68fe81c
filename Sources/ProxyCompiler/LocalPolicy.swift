import Nftables
import ServiceModel

// Traffic policies Local (externalTrafficPolicy, internalTrafficPolicy) in the bucket
// layout. docs/ruleset.md describes the shape with a worked example.
//
// - internalTrafficPolicy Local: a ClusterIP frontend balances over this node's endpoints
//   only, through the ordinary `service-lb-N` buckets; with none, its `service-ips`
//   element is `drop`.
// - externalTrafficPolicy Local: the dispatch element of an externalIP, LB IP or NodePort
//   goes to one shared chain per kind (`external-local-policy`, `nodeport-local-policy`).
//   That chain sends pods' traffic (source in a cluster CIDR) and the node's own traffic
//   (`fib saddr type local`, masqueraded) through `short-circuit-ips` / `-nodeports` to every
//   endpoint, and everything else through `local-policy-ips` / `-nodeports` to this node's
//   endpoints (`local-lb-N`, `nodeport-local-lb-N`: source kept), or `drop` when the node
//   has none.
// - loadBalancerSourceRanges (SourceRanges.swift): the shared chain `source-ranges-check`.
// Each of these maps is referenced by a number of rules fixed by the node's configuration.

extension RulesetLayout.SetName {
    /// LB IP . port . allowed source range (an interval set).
    public static let sourceRanges = "source-ranges"
    /// LB IP . protocol . port : where an allowed source goes on (its bucket or Local policy).
    public static let sourceRangeIPs = "source-ranges-ips"
    /// externalIP / LB IP . protocol . port : goto `local-lb-N`, or drop (no local endpoint).
    public static let localPolicyIPs = "local-policy-ips"
    /// protocol . NodePort : goto `nodeport-local-lb-N`, or drop.
    public static let localPolicyNodePorts = "local-policy-nodeports"
    /// externalIP / LB IP . protocol . port : goto `service-lb-N` (pods and the node: every endpoint).
    public static let shortCircuitIPs = "short-circuit-ips"
    /// protocol . NodePort : goto `nodeport-direct-lb-N`.
    public static let shortCircuitNodePorts = "short-circuit-nodeports"
    public static let localBackendsPrefix = "local-backends-"
    public static let nodePortLocalBackendsPrefix = "nodeport-local-backends-"
    /// Frontend . index -> one of this node's endpoints, for frontends with `count` of them.
    public static func localBackends(_ count: Int) -> String { localBackendsPrefix + String(count) }
    /// protocol . NodePort . index -> one of this node's endpoints.
    public static func nodePortLocalBackends(_ count: Int) -> String { nodePortLocalBackendsPrefix + String(count) }
}

extension RulesetLayout.ChainName {
    /// loadBalancerSourceRanges: allowed sources continue to `source-ranges-ips`, others drop.
    public static let sourceRangesCheck = "source-ranges-check"
    /// externalTrafficPolicy Local for externalIPs and LB IPs: short-circuit or local endpoints.
    public static let externalLocalPolicy = "external-local-policy"
    /// externalTrafficPolicy Local for NodePorts.
    public static let nodePortLocalPolicy = "nodeport-local-policy"
    /// DNAT to one of `count` local endpoints of an externalIP / LB IP (source kept).
    public static func localBalancer(_ count: Int) -> String { "local-lb-\(count)" }
    /// DNAT to one of `count` local endpoints of a NodePort (source kept).
    public static func nodePortLocalBalancer(_ count: Int) -> String { "nodeport-local-lb-\(count)" }
    /// DNAT to one of a NodePort's `count` endpoints without masquerading (pods' short-circuit).
    public static func nodePortDirectBalancer(_ count: Int) -> String { "nodeport-direct-lb-\(count)" }
}

/// A shared part of the ruleset that exists while some frontend uses it: the chain of a
/// policy with its maps (externalTrafficPolicy Local, the loadBalancerSourceRanges check, a
/// session-affinity chain), or session affinity's validation set of one timeout.
enum PolicyChain: Hashable {
    /// `external-local-policy`, `short-circuit-ips`, `local-policy-ips`.
    case external
    /// `nodeport-local-policy`, `short-circuit-nodeports`, `local-policy-nodeports`.
    case nodePort
    /// `source-ranges-check`, `source-ranges`, `source-ranges-ips`.
    case sourceRanges
    /// sessionAffinity: the affinity chain in front of one kind of bucket, with its verdict
    /// map (and, while any exists, the affinity maps and `affinity-record`).
    case affinity(AffinityPath)
    /// sessionAffinity: the validation set of one timeout (`affinity-endpoints-<seconds>`,
    /// `nodeport-affinity-endpoints-<seconds>`), with its rule in `affinity-record`.
    case affinityEndpoints(nodePort: Bool, seconds: UInt32)

    /// The name of its chain; for `.affinityEndpoints`, which has none, of its set.
    var name: String {
        switch self {
        case .external: return RulesetLayout.ChainName.externalLocalPolicy
        case .nodePort: return RulesetLayout.ChainName.nodePortLocalPolicy
        case .sourceRanges: return RulesetLayout.ChainName.sourceRangesCheck
        case .affinity(let path): return path.chainName
        case .affinityEndpoints(let nodePort, let seconds):
            return nodePort ? RulesetLayout.SetName.nodePortAffinityEndpoints(seconds)
                : RulesetLayout.SetName.affinityEndpoints(seconds)
        }
    }
}

/// A port's endpoints on this node, for the traffic policies that ask for them.
struct LocalPolicyEndpoints {
    /// internalTrafficPolicy Local: for the ClusterIP frontends.
    var `internal`: [Endpoint]?
    /// externalTrafficPolicy Local: for externalIP, LB IP and NodePort frontends.
    var external: [Endpoint]?

    /// The ready endpoints of `port` on node `node` or, when none of them is ready, its
    /// serving-and-terminating ones there: decided apart from the cluster-wide list. An
    /// endpoint is local only when both node names are known and equal.
    init(service: Service, port: ServicePort, family: IPFamily, node: String?) {
        let wantsInternal = service.internalTrafficPolicy == .local
        let wantsExternal = service.externalTrafficPolicy == .local
        guard wantsInternal || wantsExternal else { return }
        let here = port.endpoints.filter { endpoint in node.map { endpoint.nodeName == $0 } ?? false }
        let local = usableEndpoints(here, family: family)
        if wantsInternal { self.internal = local }
        if wantsExternal { self.external = local }
    }
}

/// How one frontend is served: its dispatch elements (nil verdict: an element of a plain
/// set) and the buckets it balances through, each with its endpoints by slot.
struct FrontendPlan {
    var dispatch: [(set: DispatchSet, verdict: Verdict?)]
    var buckets: [(bucket: Bucket, endpoints: [Endpoint])] = []
    var shapes: [PolicyChain] = []
    /// sessionAffinity: the validation set of the frontend's timeout and key kind, and the
    /// frontend's endpoints (address . port) in any of its buckets, each once.
    var affinityEndpoints: (set: String, endpoints: [[Value]])? = nil
}

extension FamilyCompiler {
    /// Where `frontend`'s elements go and which buckets it uses.
    func plan(for frontend: Frontend) -> FrontendPlan {
        var plan = policyPlan(for: frontend)
        addAffinity(to: &plan, for: frontend)
        // loadBalancerSourceRanges: the dispatch element goes through the check first.
        if !frontend.sourceRanges.isEmpty, let first = plan.dispatch.first, first.set == .serviceIPs, let verdict = first.verdict {
            plan.dispatch[0].verdict = .goto(RulesetLayout.ChainName.sourceRangesCheck)
            plan.dispatch.append((.sourceRangeIPs, verdict))
            plan.shapes.append(.sourceRanges)
        }
        return plan
    }

    /// `plan(for:)` before the source-range check.
    private func policyPlan(for frontend: Frontend) -> FrontendPlan {
        let isNodePort = frontend.kind == .nodePort || frontend.address == nil
        let count = frontend.endpoints.count
        guard count > 0 else {
            return FrontendPlan(dispatch: [(isNodePort ? .noEndpointNodePorts : .noEndpointServices, nil)])
        }
        let dispatchSet: DispatchSet = isNodePort ? .serviceNodePorts : .serviceIPs
        guard let local = frontend.local else {
            let bucket: Bucket = isNodePort ? .nodePort(count) : frontend.kind == .external ? .external(count) : .service(count)
            return FrontendPlan(dispatch: [(dispatchSet, .goto(bucket.chainName))], buckets: [(bucket, frontend.endpoints)])
        }
        if frontend.kind == .clusterIP {
            // internalTrafficPolicy Local: every packet to a ClusterIP is internal traffic.
            guard !local.isEmpty else { return FrontendPlan(dispatch: [(dispatchSet, .drop)]) }
            let bucket = Bucket.service(local.count)
            return FrontendPlan(dispatch: [(dispatchSet, .goto(bucket.chainName))], buckets: [(bucket, local)])
        }
        let shape: PolicyChain = isNodePort ? .nodePort : .external
        let direct: Bucket = isNodePort ? .nodePortDirect(count) : .service(count)
        var plan = FrontendPlan(dispatch: [(dispatchSet, .goto(shape.name)),
                                           (isNodePort ? .shortCircuitNodePorts : .shortCircuitIPs, .goto(direct.chainName))],
                                buckets: [(direct, frontend.endpoints)], shapes: [shape])
        let localSet: DispatchSet = isNodePort ? .localPolicyNodePorts : .localPolicyIPs
        if local.isEmpty {
            plan.dispatch.append((localSet, .drop))
        } else {
            let bucket: Bucket = isNodePort ? .nodePortLocal(local.count) : .local(local.count)
            plan.dispatch.append((localSet, .goto(bucket.chainName)))
            plan.buckets.append((bucket, local))
        }
        return plan
    }

    /// The maps and chains of the Local-policy buckets and shared chains in `contents`.
    func localPolicyParts(_ contents: TableContents,
                          sized: (String, SetFields, SetData?, [SetElement]) -> NamedSet) -> (sets: [NamedSet], chains: [Chain]) {
        typealias Names = RulesetLayout.ChainName
        typealias Sets = RulesetLayout.SetName
        var sets: [NamedSet] = []
        var chains: [Chain] = []
        let data = RulesetLayout.endpointData(family)
        let kinds: [(counts: [Int], map: (Int) -> String, chain: (Int) -> String, key: [Selector])] = [
            (contents.buckets.compactMap { if case .local(let n) = $0 { n } else { nil } },
             Sets.localBackends, Names.localBalancer, RulesetLayout.frontendKey(family)),
            (contents.buckets.compactMap { if case .nodePortLocal(let n) = $0 { n } else { nil } },
             Sets.nodePortLocalBackends, Names.nodePortLocalBalancer, RulesetLayout.nodePortKey),
        ]
        for kind in kinds {
            for count in kind.counts.sorted() {
                let key = kind.key + [.randomNumber(modulus: UInt32(count))]
                let mapName = kind.map(count)
                sets.append(sized(mapName, .typeOf(key), .fields(data), contents.backends[mapName] ?? []))
                chains.append(Chain(name: kind.chain(count), rules: [Rule([.dnatMap(key, map: mapName, family: family)])]))
            }
        }
        for shape in [PolicyChain.external, .nodePort] where contents.shapes.contains(shape) {
            let (key, keyTypes, shortCircuit, localPolicy): ([Selector], [DataType], DispatchSet, DispatchSet) = shape == .external
                ? (RulesetLayout.frontendKey(family), [family.addressType, .inetProto, .inetService], .shortCircuitIPs, .localPolicyIPs)
                : (RulesetLayout.nodePortKey, [.inetProto, .inetService], .shortCircuitNodePorts, .localPolicyNodePorts)
            for set in [localPolicy, shortCircuit] {
                sets.append(sized(set.setName, .types(keyTypes), .verdict, contents.dispatch[set] ?? []))
            }
            chains.append(Chain(name: shape.name, rules: localPolicyRules(key: key, shortCircuit: shortCircuit.setName,
                                                                              local: localPolicy.setName)))
        }
        if contents.shapes.contains(.sourceRanges) {
            sets.append(sized(Sets.sourceRanges, .types([family.addressType, .inetService, family.addressType]), nil,
                              contents.sourceRanges).withInterval)
            sets.append(sized(Sets.sourceRangeIPs, .types([family.addressType, .inetProto, .inetService]), .verdict,
                              contents.dispatch[.sourceRangeIPs] ?? []))
            let frontendKey = RulesetLayout.frontendKey(family)
            chains.append(Chain(name: Names.sourceRangesCheck, rules: [
                Rule([.lookup([daddr, .transportDestinationPort, saddr], set: Sets.sourceRanges),
                      .verdictMap(frontendKey, map: Sets.sourceRangeIPs)]),
                Rule([.verdict(.drop)]),
            ]))
        }
        return (sets, chains)
    }

    /// The rules of a shared Local-policy chain: pods and the node short-circuit to every
    /// endpoint (the node's traffic masqueraded, as kube-proxy does), the rest goes local.
    private func localPolicyRules(key: [Selector], shortCircuit: String, local: String) -> [Rule] {
        let fromNode = Statement.compare(.fibSourceType, negated: false, .integer(2))
        var rules = node.clusterCIDRs.filter { $0.family == ipFamily }.map { cidr in
            Rule([match(saddr, cidr, negated: false), .verdictMap(key, map: shortCircuit)])
        }
        rules.append(Rule([fromNode, .verdict(.jump(RulesetLayout.ChainName.markForMasquerade))]))
        rules.append(Rule([fromNode, .verdictMap(key, map: shortCircuit)]))
        rules.append(Rule([.verdictMap(key, map: local)]))
        return rules
    }

    /// `nodeport-direct-lb-N`, when `contents` has that bucket: DNAT through
    /// `nodeport-backends-N` without the masquerade mark (a Local NodePort's short-circuit).
    func nodePortDirectChain(_ count: Int, _ contents: TableContents) -> Chain? {
        guard contents.buckets.contains(.nodePortDirect(count)) else { return nil }
        let key = RulesetLayout.nodePortKey + [.randomNumber(modulus: UInt32(count))]
        return Chain(name: RulesetLayout.ChainName.nodePortDirectBalancer(count),
                     rules: [Rule([.dnatMap(key, map: RulesetLayout.SetName.nodePortBackends(count), family: family)])])
    }
}
