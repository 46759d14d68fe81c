import Nftables
import ServiceModel

/// The result of compiling: the ruleset and what the compiler had to decide on its own.
public struct Compilation: Sendable {
    public var ruleset: Ruleset
    /// Conflicts resolved and features not (yet) honoured, one each.
    public var warnings: [Diagnostic]
}

/// Compiles a `ServiceMap` for a node into the nftables `Ruleset` nftproxy programs.
///
/// A pure, deterministic function: the same inputs give the same ruleset, element order included.
public struct Compiler: Sendable {
    public var node: NodeConfig

    public init(node: NodeConfig) { self.node = node }

    public func compile(_ map: ServiceMap) -> Compilation {
        var warnings = map.services.flatMap(affinityWarnings)
        var tables: [Table] = []
        for (family, ipFamily) in [(TableFamily.ip, IPFamily.v4), (.ip6, .v6)] {
            let (list, conflicts) = frontends(of: map, family: ipFamily, node: node.nodeName, zone: node.zone)
            // A NodePort conflict shows in both families: say it once.
            warnings += conflicts.filter { !warnings.contains($0) }
            tables.append(FamilyCompiler(family: family, ipFamily: ipFamily, node: node).table(for: list))
        }
        return Compilation(ruleset: Ruleset(tables: tables), warnings: warnings)
    }
}

/// Builds the table of one family.
struct FamilyCompiler {
    let family: TableFamily
    let ipFamily: IPFamily
    let node: NodeConfig

    private typealias Names = RulesetLayout.ChainName
    private typealias Sets = RulesetLayout.SetName

    var mark: UInt32 { node.masqueradeMark }
    var daddr: Selector { .address(.destination, family) }
    var saddr: Selector { .address(.source, family) }

    /// The whole table for the (conflict-free) frontends of this family.
    func table(for frontends: [Frontend]) -> Table {
        var contents = TableContents()
        var seenClusterIPs = Set<IPAddress>(minimumCapacity: frontends.count)
        var sourceRangeGroups: [SourceRangeGroup: Set<CIDR>] = [:]
        var groupOrder: [SourceRangeGroup] = []
        var seenLocalEndpoints = Set<IPAddress>(minimumCapacity: frontends.reduce(0) { $0 + $1.endpoints.count })
        for frontend in frontends {
            if frontend.kind == .clusterIP, let ip = frontend.address, seenClusterIPs.insert(ip).inserted {
                contents.clusterIPs.append(ip)
            }
            for list in [frontend.endpoints, frontend.local ?? []] {
                for endpoint in list where isPossiblyLocal(endpoint) && seenLocalEndpoints.insert(endpoint.address).inserted {
                    contents.localEndpoints.append(endpoint.address)
                }
            }
            let entries = entries(for: frontend)
            for (bucket, _) in entries.buckets { contents.buckets.insert(bucket) }
            contents.shapes.formUnion(entries.shapes)
            if let (group, ranges) = sourceRangeClaims(for: frontend) {
                if sourceRangeGroups[group] == nil { groupOrder.append(group) }
                sourceRangeGroups[group, default: []].formUnion(ranges)
            }
            contents.add(entries)
        }
        for group in groupOrder {
            contents.sourceRanges += Self.sourceRangeElements(group, sourceRangeGroups[group] ?? [])
        }
        return table(contents)
    }

    /// The dispatch and backend elements of one frontend.
    func entries(for frontend: Frontend) -> FrontendEntries {
        let proto = Value.proto(frontend.transport.number)
        let port = Value.port(frontend.port)
        let address = frontend.kind == .nodePort ? nil : frontend.address
        let key: [Value] = address.map { [.address($0), proto, port] } ?? [proto, port]
        let plan = plan(for: frontend)
        var entries = FrontendEntries(dispatch: [], shapes: plan.shapes)
        for (bucket, endpoints) in plan.buckets {
            var backends: [SetElement] = []
            backends.reserveCapacity(endpoints.count)
            for (index, endpoint) in endpoints.enumerated() {
                var element = SetElement(key: key + [.integer(UInt32(index))],
                                         data: .values([.address(endpoint.address), .port(endpoint.port)]))
                // With endpoint counters, the node `stats` and the metrics label counts with.
                if node.endpointCounters {
                    element.comment = EndpointTrafficLayout.endpointComment(for: endpoint, node: node)
                }
                backends.append(element)
            }
            entries.buckets.append((bucket, backends))
        }
        // With endpoint counters, the frontend's element in the main dispatch map names its service.
        let serviceComment = node.endpointCounters ? EndpointTrafficLayout.serviceComment(for: frontend) : nil
        entries.dispatch = plan.dispatch.map { set, verdict in
            guard let verdict else { return (set, SetElement(key: key)) }
            let named = set == .serviceIPs || set == .serviceNodePorts
            return (set, SetElement(key: key, data: .verdict(verdict)).commented(named ? serviceComment : nil))
        }
        // The digest of its backends, for a later process's read-back (docs/ruleset.md).
        if !entries.buckets.isEmpty {
            let digest = FrontendDigest.of(entries.buckets.map { bucket, backends in
                (map: bucket.mapName, modulus: UInt32(backends.count), elements: backends)
            })
            entries.digest = SetElement(key: key).commented(digest.token)
        }
        if let affinity = plan.affinityEndpoints {
            entries.extras.append((affinity.set, affinity.endpoints.map { SetElement(key: key + $0) }))
        }
        return entries
    }

    /// A table holding the given elements, with the sets, maps and chains of the given buckets.
    func table(_ contents: TableContents) -> Table {
        let addressType = family.addressType
        func elements(_ set: DispatchSet) -> [SetElement] { contents.dispatch[set] ?? [] }
        /// A set declared with the size its element count calls for.
        func sized(_ name: String, key: SetFields, data: SetData? = nil, _ elements: [SetElement]) -> NamedSet {
            let count = contents.counts.map { $0[name] ?? 0 } ?? elements.count
            return NamedSet(name: name, key: key, data: data, size: RulesetLayout.setSize(forElements: count),
                            elements: elements)
        }
        let serviceIPs = sized(Sets.serviceIPs, key: .types([addressType, .inetProto, .inetService]), data: .verdict,
                               elements(.serviceIPs))
        let serviceNodePorts = sized(Sets.serviceNodePorts, key: .types([.inetProto, .inetService]), data: .verdict,
                                     elements(.serviceNodePorts))
        var sets: [NamedSet] = [
            sized(Sets.clusterIPs, key: .types([addressType]), contents.clusterIPs.map { SetElement(key: [.address($0)]) }),
            serviceIPs,
            serviceNodePorts,
            sized(Sets.noEndpointServices, key: .types([addressType, .inetProto, .inetService]),
                  elements(.noEndpointServices)),
            sized(Sets.noEndpointNodePorts, key: .types([.inetProto, .inetService]), elements(.noEndpointNodePorts)),
            sized(Sets.hairpinEndpoints, key: .types([addressType, addressType]),
                  contents.localEndpoints.map { SetElement(key: [.address($0), .address($0)]) }),
            sized(FrontendDigest.setName, key: .types([addressType, .inetProto, .inetService]), contents.digests),
            sized(FrontendDigest.nodePortSetName, key: .types([.inetProto, .inetService]), contents.nodePortDigests),
        ]
        var bucketChains: [Chain] = []
        let serviceCounts = Set(contents.buckets.compactMap(\.serviceBackendsCount))
        for count in serviceCounts.sorted() {
            let modulus = UInt32(count)
            let mapName = Sets.serviceBackends(count)
            sets.append(sized(mapName, key: .typeOf(RulesetLayout.frontendKey(family) + [.randomNumber(modulus: modulus)]),
                              data: .fields(RulesetLayout.endpointData(family)), contents.backends[mapName] ?? []))
            let dnat = Statement.dnatMap(RulesetLayout.frontendKey(family) + [.randomNumber(modulus: modulus)],
                                         map: mapName, family: family)
            bucketChains.append(Chain(name: Names.serviceBalancer(count), rules: [Rule([dnat])]))
            if contents.buckets.contains(.external(count)) {
                bucketChains.append(Chain(name: Names.externalBalancer(count),
                                          rules: [Rule([.setMarkBits(mark)]), Rule([dnat])]))
            }
        }
        let nodePortCounts = Set(contents.buckets.compactMap(\.nodePortBackendsCount))
        for count in nodePortCounts.sorted() {
            let modulus = UInt32(count)
            let mapName = Sets.nodePortBackends(count)
            let key = RulesetLayout.nodePortKey + [.randomNumber(modulus: modulus)]
            sets.append(sized(mapName, key: .typeOf(key), data: .fields(RulesetLayout.endpointData(family)),
                              contents.backends[mapName] ?? []))
            if contents.buckets.contains(.nodePort(count)) {
                bucketChains.append(Chain(name: Names.nodePortBalancer(count), rules: [
                    Rule([.setMarkBits(mark)]),
                    Rule([.dnatMap(key, map: mapName, family: family)]),
                ]))
            }
            if let direct = nodePortDirectChain(count, contents) { bucketChains.append(direct) }
        }
        let policy = localPolicyParts(contents) { sized($0, key: $1, data: $2, $3) }
        sets += policy.sets
        bucketChains += policy.chains
        let affinity = affinityParts(contents) { sized($0, key: $1, data: $2, $3) }
        sets += affinity.sets
        bucketChains += affinity.chains
        var fixed = fixedChains()
        if hasAffinity(contents) {
            // New connections, after DNAT: write or refresh the client's affinity entry.
            let record = Rule([.bitTest(.ctState, mask: CtStateFlag.new, isSet: true),
                               .bitTest(.ctStatus, mask: CtStatusFlag.destinationNAT, isSet: true),
                               .verdict(.jump(Names.affinityRecord))])
            for index in fixed.indices where fixed[index].base?.type == .filter { fixed[index].rules.append(record) }
        }

        var counting: [Chain] = []
        if node.endpointCounters {
            sets += EndpointTrafficLayout.sets(family, serviceIPs: serviceIPs, serviceNodePorts: serviceNodePorts)
            counting += EndpointTrafficLayout.countChains(family)
        }
        return Table(family: family, name: RulesetLayout.tableName, sets: sets,
                     chains: fixed + counting + bucketChains)
    }

    /// Whether the endpoint may run on this node (unknown when either node name is missing).
    func isPossiblyLocal(_ endpoint: Endpoint) -> Bool {
        guard let here = node.nodeName, let there = endpoint.nodeName else { return true }
        return here == there
    }

    /// Conditions under which a packet's destination is a NodePort address of this node.
    /// As in kube-proxy, a family for which `--nodeport-addresses` names no range answers on
    /// every local address of that family (loopback excepted).
    private var nodePortAddressMatches: [[Statement]] {
        let local = Statement.compare(.fibDestinationType, negated: false, .integer(FibAddressType.local))
        let ranges = node.nodePortAddresses.filter { $0.family == ipFamily }
        if ranges.isEmpty {
            let loopback: Statement = family == .ip
                ? .prefix(daddr, network: IPAddress("127.0.0.0")!, length: 8, negated: true)
                : .compare(daddr, negated: true, .address(IPAddress("::1")!))
            return [[local, loopback]]
        }
        return ranges.map { [local, match(daddr, $0, negated: false)] }
    }

    /// `<selector> <cidr>`; a full-length prefix is a plain comparison, as nft writes it.
    func match(_ selector: Selector, _ cidr: CIDR, negated: Bool) -> Statement {
        if cidr.prefixLength == cidr.family.addressLength * 8 {
            return .compare(selector, negated: negated, .address(cidr.address))
        }
        return .prefix(selector, network: cidr.address, length: cidr.prefixLength, negated: negated)
    }

    /// The rules of a filter base chain: count DNATed packets (with endpoint counters), then
    /// send new connections to the reject checks.
    private func filterRules(_ hook: BaseChain.Hook) -> [Rule] {
        let newConnection = Statement.bitTest(.ctState, mask: CtStateFlag.new, isSet: true)
        let reject = Rule([newConnection, .verdict(.jump(Names.rejectUnserved))])
        return node.endpointCounters ? [EndpointTrafficLayout.jumpRule(hook: hook), reject] : [reject]
    }

    private func fixedChains() -> [Chain] {
        let frontendKey = RulesetLayout.frontendKey(family)

        var services: [Rule] = []
        let podCIDRs = node.clusterCIDRs.filter { $0.family == ipFamily }
        let everyoneIsPod = podCIDRs.contains { $0.prefixLength == 0 }
        if node.masqueradeAll {
            services.append(Rule([.lookup([daddr], set: Sets.clusterIPs), .verdict(.jump(Names.markForMasquerade))]))
        } else if !podCIDRs.isEmpty && !everyoneIsPod {
            services.append(Rule([.lookup([daddr], set: Sets.clusterIPs), .verdict(.jump(Names.masqueradeOffCluster))]))
        }
        services.append(Rule([.verdictMap(frontendKey, map: Sets.serviceIPs)]))
        for conditions in nodePortAddressMatches {
            services.append(Rule(conditions + [.verdictMap(RulesetLayout.nodePortKey, map: Sets.serviceNodePorts)]))
        }

        var rejectUnserved: [Rule] = [
            Rule([.lookup(frontendKey, set: Sets.noEndpointServices), .verdict(.goto(Names.rejectPacket))]),
        ]
        for conditions in nodePortAddressMatches {
            rejectUnserved.append(Rule(conditions + [.lookup(RulesetLayout.nodePortKey, set: Sets.noEndpointNodePorts),
                                                     .verdict(.goto(Names.rejectPacket))]))
        }
        rejectUnserved.append(Rule([.lookup([daddr], set: Sets.clusterIPs), .verdict(.goto(Names.rejectPacket))]))

        let priority = RulesetLayout.Priority.self
        return [
            Chain(name: Names.natPrerouting, base: BaseChain(type: .nat, hook: .prerouting, priority: priority.dstnat),
                  rules: [Rule([.verdict(.jump(Names.services))])]),
            Chain(name: Names.natOutput, base: BaseChain(type: .nat, hook: .output, priority: priority.dstnat),
                  rules: [Rule([.verdict(.jump(Names.services))])]),
            Chain(name: Names.natPostrouting, base: BaseChain(type: .nat, hook: .postrouting, priority: priority.srcnat),
                  rules: [Rule([.verdict(.jump(Names.masquerading))])]),
            Chain(name: Names.filterInput, base: BaseChain(type: .filter, hook: .input, priority: priority.filter),
                  rules: filterRules(.input)),
            Chain(name: Names.filterForward, base: BaseChain(type: .filter, hook: .forward, priority: priority.filter),
                  rules: filterRules(.forward)),
            Chain(name: Names.filterOutput, base: BaseChain(type: .filter, hook: .output, priority: priority.filter),
                  rules: filterRules(.output)),
            Chain(name: Names.services, rules: services),
            Chain(name: Names.masqueradeOffCluster,
                  rules: podCIDRs.map { Rule([match(saddr, $0, negated: false), .verdict(.return)]) }
                      + [Rule([.setMarkBits(mark)])]),
            Chain(name: Names.markForMasquerade, rules: [Rule([.setMarkBits(mark)])]),
            Chain(name: Names.masquerading, rules: [
                Rule([.bitTest(.ctStatus, mask: CtStatusFlag.destinationNAT, isSet: true), .lookup([saddr, daddr], set: Sets.hairpinEndpoints),
                      .setMarkBits(mark)]),
                Rule([.bitTest(.mark, mask: mark, isSet: false), .verdict(.return)]),
                Rule([.toggleMarkBits(mark)]),
                Rule([.masquerade(fullyRandom: true)]),
            ]),
            Chain(name: Names.rejectUnserved, rules: rejectUnserved),
            Chain(name: Names.rejectPacket, rules: [
                Rule([.compare(.l4proto, negated: false, .proto(TransportProtocol.tcp.number)), .reject(.tcpReset)]),
                Rule([.reject(.portUnreachable)]),
            ]),
        ]
    }
}
