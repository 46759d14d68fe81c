import Nftables
import ServiceModel

// sessionAffinity: ClientIP in the bucket layout. docs/ruleset.md describes the shape.
//
// - Where a frontend of an affinity service would go to a bucket chain, it goes to a shared
//   affinity chain of that bucket's kind instead: the chain DNATs through the dynamic map
//   `affinity` (`nodeport-affinity`) keyed by client address . frontend when the client
//   has an entry, and otherwise goes on to the bucket through a verdict map keyed by the
//   frontend (`affinity-service-buckets`, …), which the kernel balances as usual.
// - After DNAT, a new connection's filter hook (`affinity-record`) checks that frontend .
//   endpoint is one of the frontend's current endpoints (a plain set per timeout,
//   `affinity-endpoints-<seconds>`) and, in the same rule, writes or refreshes the client's
//   entry with that timeout. A remembered endpoint that is no longer valid (removed) has its
//   entry deleted and the packet dropped: the client's retransmission finds no entry and is
//   balanced again.
// The validation sets carry no verdicts: a batch that adds an element with a `goto` to a
// verdict map makes the kernel validate the table's whole jump graph at commit, and every
// endpoint change of an affinity service would pay for it.
// Every set is referenced by a number of rules that depends only on the distinct timeouts.

extension RulesetLayout.SetName {
    /// Dynamic: client . frontend address . protocol . port -> the endpoint it keeps.
    public static let affinity = "affinity"
    /// Dynamic: client . protocol . NodePort -> the endpoint it keeps.
    public static let nodePortAffinity = "nodeport-affinity"
    /// Frontend address . protocol . port . endpoint . port, for frontends whose service
    /// keeps clients `seconds` long.
    public static func affinityEndpoints(_ seconds: UInt32) -> String { "affinity-endpoints-\(seconds)" }
    /// protocol . NodePort . endpoint . port, for NodePorts whose service keeps clients `seconds` long.
    public static func nodePortAffinityEndpoints(_ seconds: UInt32) -> String { "nodeport-affinity-endpoints-\(seconds)" }
}

extension RulesetLayout.ChainName {
    /// The affinity chain in front of `external-lb-N` (marks for masquerading).
    public static let affinityExternal = "affinity-external"
    /// The affinity chain in front of `nodeport-lb-N` (marks for masquerading).
    public static let affinityNodePort = "affinity-nodeport"
    /// Filter hook: writes or refreshes the client's entry after DNAT, or releases it.
    public static let affinityRecord = "affinity-record"
}

extension RulesetLayout {
    /// The `size` of the dynamic affinity maps: the most clients remembered at once per
    /// family and kind (beyond it new clients are balanced without being remembered).
    public static let affinitySize = 65_536
}

/// The shared affinity chain in front of one kind of bucket chain.
enum AffinityPath: Hashable, CaseIterable {
    case service, external, local, nodePort, nodePortDirect, nodePortLocal

    init(_ bucket: Bucket) {
        switch bucket {
        case .service: self = .service
        case .external: self = .external
        case .local: self = .local
        case .nodePort: self = .nodePort
        case .nodePortDirect: self = .nodePortDirect
        case .nodePortLocal: self = .nodePortLocal
        }
    }

    var isNodePort: Bool { self == .nodePort || self == .nodePortDirect || self == .nodePortLocal }
    /// Whether the bucket chain it stands in front of marks for masquerading.
    var marks: Bool { self == .external || self == .nodePort }

    var suffix: String {
        switch self {
        case .service: return "service"
        case .external: return "external"
        case .local: return "local"
        case .nodePort: return "nodeport"
        case .nodePortDirect: return "nodeport-direct"
        case .nodePortLocal: return "nodeport-local"
        }
    }

    /// `affinity-service`, …
    var chainName: String { "affinity-" + suffix }
    /// The verdict map from frontend to bucket chain: `affinity-service-buckets`, …
    var bucketsMapName: String { "affinity-\(suffix)-buckets" }
}

extension FamilyCompiler {
    /// Puts the affinity chains in front of `plan`'s buckets when `frontend`'s service has
    /// sessionAffinity ClientIP; the validation elements go to `plan.affinityEndpoints`.
    func addAffinity(to plan: inout FrontendPlan, for frontend: Frontend) {
        let isNodePort = frontend.kind == .nodePort || frontend.address == nil
        // IPv4 only: an IPv6 entry's data (address . port, 20 bytes) is more than nft 1.0.6
        // can write in an `update` (it aborts), and client . frontend : endpoint of an IPv6
        // address (40 + 20 bytes in whole 16-byte registers) exceeds the 64 bytes of
        // registers anyway; see `affinityWarnings`.
        guard let timeout = frontend.affinityTimeout, !plan.buckets.isEmpty, family == .ip else { return }
        let buckets = Dictionary(plan.buckets.map { ($0.bucket.chainName, $0.bucket) }, uniquingKeysWith: { first, _ in first })
        for index in plan.dispatch.indices {
            guard case .goto(let target)? = plan.dispatch[index].verdict, let bucket = buckets[target] else { continue }
            let path = AffinityPath(bucket)
            plan.dispatch[index].verdict = .goto(path.chainName)
            plan.dispatch.append((.affinityBuckets(path), .goto(target)))
            plan.shapes.append(.affinity(path))
        }
        var seen = Set<[Value]>()
        var endpoints: [(Value, Value)] = []
        for (_, list) in plan.buckets {
            for endpoint in list where seen.insert([.address(endpoint.address), .port(endpoint.port)]).inserted {
                endpoints.append((.address(endpoint.address), .port(endpoint.port)))
            }
        }
        let shape = PolicyChain.affinityEndpoints(nodePort: isNodePort, seconds: timeout)
        plan.affinityEndpoints = (shape.name, endpoints.map { [$0.0, $0.1] })
        plan.shapes.append(shape)
    }

    /// The sets and chains of session affinity for the affinity shapes in `contents`.
    func affinityParts(_ contents: TableContents,
                       sized: (String, SetFields, SetData?, [SetElement]) -> NamedSet) -> (sets: [NamedSet], chains: [Chain]) {
        typealias Sets = RulesetLayout.SetName
        let paths = AffinityPath.allCases.filter { contents.shapes.contains(.affinity($0)) }
        guard !paths.isEmpty else { return ([], []) }
        // The validation sets that exist: one per distinct timeout and kind of key.
        let timeouts = contents.shapes.compactMap { shape -> (nodePort: Bool, seconds: UInt32)? in
            if case .affinityEndpoints(let nodePort, let seconds) = shape { return (nodePort, seconds) }
            return nil
        }.sorted { ($0.nodePort ? 1 : 0, $0.seconds) < ($1.nodePort ? 1 : 0, $1.seconds) }
        let data = RulesetLayout.endpointData(family)
        let ipKey = [saddr] + RulesetLayout.frontendKey(family)
        let nodePortKey = [saddr] + RulesetLayout.nodePortKey
        // The maps of a kind of key exist while some frontend of that kind has affinity.
        let kinds = [false, true].filter { nodePort in
            paths.contains { $0.isNodePort == nodePort } || timeouts.contains { $0.nodePort == nodePort }
        }
        var sets: [NamedSet] = []
        for nodePort in kinds {
            sets.append(NamedSet(name: nodePort ? Sets.nodePortAffinity : Sets.affinity,
                                 key: .typeOf(nodePort ? nodePortKey : ipKey), data: .fields(data),
                                 size: RulesetLayout.affinitySize, flags: [.dynamic, .timeout]))
            let frontendTypes: [DataType] = nodePort ? [.inetProto, .inetService] : [family.addressType, .inetProto, .inetService]
            for timeout in timeouts where timeout.nodePort == nodePort {
                let name = PolicyChain.affinityEndpoints(nodePort: nodePort, seconds: timeout.seconds).name
                sets.append(sized(name, .types(frontendTypes + [family.addressType, .inetService]), nil,
                                  contents.backends[name] ?? []))
            }
        }
        var chains: [Chain] = []
        for path in paths {
            let key = path.isNodePort ? RulesetLayout.nodePortKey : RulesetLayout.frontendKey(family)
            let map = path.isNodePort ? Sets.nodePortAffinity : Sets.affinity
            sets.append(sized(path.bucketsMapName, .types(key.map(\.dataType)), .verdict,
                              contents.dispatch[.affinityBuckets(path)] ?? []))
            var rules: [Rule] = path.marks ? [Rule([.setMarkBits(mark)])] : []
            rules.append(Rule([.dnatMap([saddr] + key, map: map, family: family)]))
            rules.append(Rule([.verdictMap(key, map: path.bucketsMapName)]))
            chains.append(Chain(name: path.chainName, rules: rules))
        }
        chains.append(Chain(name: RulesetLayout.ChainName.affinityRecord, rules: affinityRecordRules(kinds, timeouts)))
        return (sets, chains)
    }

    /// `affinity-record`: a valid frontend . endpoint pair (in the validation set of some
    /// timeout) writes or refreshes the client's entry with that timeout and returns; an
    /// invalid one whose client has an entry deletes the entry and drops the packet.
    private func affinityRecordRules(_ kinds: [Bool], _ timeouts: [(nodePort: Bool, seconds: UInt32)]) -> [Rule] {
        typealias Sets = RulesetLayout.SetName
        // After DNAT: the connection's frontend (its original destination) and endpoint.
        // nft takes `ct original proto-dst` in a concatenation only once the rule has fixed
        // the protocol, hence a rule per protocol.
        let originalIP: [Selector] = [.ctAddress(.destination, .original, family), .l4proto, .ctPort(.destination, .original)]
        let originalNodePort: [Selector] = [.l4proto, .ctPort(.destination, .original)]
        let endpoint: [Selector] = [daddr, .transportDestinationPort]
        let protocols = TransportProtocol.allCases.map { Statement.compare(.l4proto, negated: false, .proto($0.number)) }
        var rules: [Rule] = []
        for proto in protocols {
            for nodePort in kinds {
                let frontend = nodePort ? originalNodePort : originalIP
                let map = nodePort ? Sets.nodePortAffinity : Sets.affinity
                for timeout in timeouts where timeout.nodePort == nodePort {
                    let set = PolicyChain.affinityEndpoints(nodePort: nodePort, seconds: timeout.seconds).name
                    rules.append(Rule([proto, .lookup(frontend + endpoint, set: set),
                                       .updateMap([saddr] + frontend, data: endpoint, map: map,
                                                  timeout: UInt64(timeout.seconds) * 1000),
                                       .verdict(.return)]))
                }
            }
        }
        for proto in protocols {
            for nodePort in kinds {
                let key = [saddr] + (nodePort ? originalNodePort : originalIP)
                let map = nodePort ? Sets.nodePortAffinity : Sets.affinity
                rules.append(Rule([proto, .lookup(key, set: map), .deleteFromMap(key, data: endpoint, map: map),
                                   .verdict(.drop)]))
            }
        }
        return rules
    }

    /// Whether `contents` has an affinity frontend (the filter chains then record entries).
    func hasAffinity(_ contents: TableContents) -> Bool {
        AffinityPath.allCases.contains { contents.shapes.contains(.affinity($0)) }
    }
}

/// What the compiler does not honour of a service's session affinity, one warning each.
func affinityWarnings(_ service: Service) -> [Diagnostic] {
    guard service.sessionAffinityTimeout != nil else { return [] }
    let addresses = service.clusterIPs + service.externalIPs + service.loadBalancerIPs
    guard addresses.contains(where: { $0.family == .v6 }) else { return [] }
    return [Diagnostic(.warning, .unsupportedField, object: .service(service.name), field: "spec.sessionAffinity",
                       message: "Service \(service.name): sessionAffinity ClientIP is kept for IPv4 only; its IPv6 "
                           + "traffic is balanced without it")]
}
