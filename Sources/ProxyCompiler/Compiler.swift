import Nftables
import ServiceModel

/// The result of compiling: the ruleset and what the compiler had to decide on its own.
public struct Compilation: Sendable {
    public var ruleset: Ruleset
    /// Conflicts resolved and features not (yet) honoured, one line each.
    public var warnings: [String]
}

/// Compiles a `ServiceMap` for a node into the nftables `Ruleset` nftproxy programs.
///
/// A pure, deterministic function: the same inputs give the same ruleset, element order included.
public struct Compiler: Sendable {
    public var node: NodeConfig

    public init(node: NodeConfig) { self.node = node }

    public func compile(_ map: ServiceMap) -> Compilation {
        var warnings: [String] = []
        for service in map.services {
            if service.externalTrafficPolicy == .local {
                warnings.append("Service \(service.name): externalTrafficPolicy Local is not supported yet; treated as Cluster")
            }
            if service.internalTrafficPolicy == .local {
                warnings.append("Service \(service.name): internalTrafficPolicy Local is not supported yet; treated as Cluster")
            }
            if service.sessionAffinityTimeout != nil {
                warnings.append("Service \(service.name): sessionAffinity ClientIP is not supported yet; ignored")
            }
            if !service.loadBalancerSourceRanges.isEmpty {
                warnings.append("Service \(service.name): loadBalancerSourceRanges are not supported yet; ignored")
            }
        }
        var tables: [Table] = []
        for (family, ipFamily) in [(TableFamily.ip, IPFamily.v4), (.ip6, .v6)] {
            let (list, conflicts) = frontends(of: map, family: ipFamily)
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

    func table(for frontends: [Frontend]) -> Table {
        var clusterIPs: [Value] = []
        var seenClusterIPs = Set<IPAddress>()
        var serviceIPs: [SetElement] = []
        var serviceNodePorts: [SetElement] = []
        var noEndpointServices: [SetElement] = []
        var noEndpointNodePorts: [SetElement] = []
        var serviceBackends: [Int: [SetElement]] = [:]
        var nodePortBackends: [Int: [SetElement]] = [:]
        var externalCounts = Set<Int>()
        var hairpin: [SetElement] = []
        var seenEndpointAddresses = Set<IPAddress>()

        for frontend in frontends {
            if frontend.kind == .clusterIP, let ip = frontend.address, seenClusterIPs.insert(ip).inserted {
                clusterIPs.append(.address(ip))
            }
            // Only a pod on this node can reach itself through this node's rules.
            for endpoint in frontend.endpoints where isPossiblyLocal(endpoint)
                && seenEndpointAddresses.insert(endpoint.address).inserted {
                hairpin.append(SetElement(key: [.address(endpoint.address), .address(endpoint.address)]))
            }
            let proto = Value.proto(frontend.transport.number)
            let port = Value.port(frontend.port)
            let count = frontend.endpoints.count
            let backends = frontend.endpoints.enumerated().map { index, endpoint in
                (index: Value.integer(UInt32(index)), data: ElementData.values([.address(endpoint.address), .port(endpoint.port)]))
            }
            switch (frontend.kind, frontend.address) {
            case (.nodePort, _), (_, nil):
                if count == 0 {
                    noEndpointNodePorts.append(SetElement(key: [proto, port]))
                    continue
                }
                serviceNodePorts.append(SetElement(key: [proto, port], data: .verdict(.goto(Names.nodePortBalancer(count)))))
                nodePortBackends[count, default: []] += backends.map { SetElement(key: [proto, port, $0.index], data: $0.data) }
            case (let kind, let address?):
                let key: [Value] = [.address(address), proto, port]
                if count == 0 {
                    noEndpointServices.append(SetElement(key: key))
                    continue
                }
                let chain: String
                if kind == .external {
                    externalCounts.insert(count)
                    chain = Names.externalBalancer(count)
                } else {
                    chain = Names.serviceBalancer(count)
                }
                serviceIPs.append(SetElement(key: key, data: .verdict(.goto(chain))))
                serviceBackends[count, default: []] += backends.map { SetElement(key: key + [$0.index], data: $0.data) }
            }
        }

        let addressType = family.addressType
        var sets: [NamedSet] = [
            NamedSet(name: Sets.clusterIPs, key: .types([addressType]), elements: clusterIPs.map { SetElement(key: [$0]) }),
            NamedSet(name: Sets.serviceIPs, key: .types([addressType, .inetProto, .inetService]), data: .verdict,
                     elements: serviceIPs),
            NamedSet(name: Sets.serviceNodePorts, key: .types([.inetProto, .inetService]), data: .verdict,
                     elements: serviceNodePorts),
            NamedSet(name: Sets.noEndpointServices, key: .types([addressType, .inetProto, .inetService]),
                     elements: noEndpointServices),
            NamedSet(name: Sets.noEndpointNodePorts, key: .types([.inetProto, .inetService]), elements: noEndpointNodePorts),
            NamedSet(name: Sets.hairpinEndpoints, key: .types([addressType, addressType]), elements: hairpin),
        ]
        var bucketChains: [Chain] = []
        for count in serviceBackends.keys.sorted() {
            let modulus = UInt32(count)
            let mapName = Sets.serviceBackends(count)
            sets.append(NamedSet(name: mapName,
                                 key: .typeOf(RulesetLayout.frontendKey(family) + [.randomNumber(modulus: modulus)]),
                                 data: .fields(RulesetLayout.endpointData(family)),
                                 elements: serviceBackends[count] ?? []))
            let dnat = Statement.dnatMap(RulesetLayout.frontendKey(family) + [.randomNumber(modulus: modulus)],
                                         map: mapName, family: family)
            bucketChains.append(Chain(name: Names.serviceBalancer(count), rules: [Rule([dnat])]))
            if externalCounts.contains(count) {
                bucketChains.append(Chain(name: Names.externalBalancer(count),
                                          rules: [Rule([.setMarkBits(mark)]), Rule([dnat])]))
            }
        }
        for count in nodePortBackends.keys.sorted() {
            let modulus = UInt32(count)
            let mapName = Sets.nodePortBackends(count)
            let key = RulesetLayout.nodePortKey + [.randomNumber(modulus: modulus)]
            sets.append(NamedSet(name: mapName, key: .typeOf(key), data: .fields(RulesetLayout.endpointData(family)),
                                 elements: nodePortBackends[count] ?? []))
            bucketChains.append(Chain(name: Names.nodePortBalancer(count), rules: [
                Rule([.setMarkBits(mark)]),
                Rule([.dnatMap(key, map: mapName, family: family)]),
            ]))
        }

        return Table(family: family, name: RulesetLayout.tableName, sets: sets, chains: fixedChains() + bucketChains)
    }

    /// Whether the endpoint may run on this node (unknown when either node name is missing).
    private func isPossiblyLocal(_ endpoint: Endpoint) -> Bool {
        guard let here = node.nodeName, let there = endpoint.nodeName else { return true }
        return here == there
    }

    /// Conditions under which a packet's destination is a NodePort address of this node.
    /// As in kube-proxy, a family for which `--nodeport-addresses` names no range answers on
    /// every local address of that family (loopback excepted).
    private var nodePortAddressMatches: [[Statement]] {
        let local = Statement.compare(.fibDestinationType, negated: false, .integer(2))
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
    private func match(_ selector: Selector, _ cidr: CIDR, negated: Bool) -> Statement {
        if cidr.prefixLength == cidr.family.addressLength * 8 {
            return .compare(selector, negated: negated, .address(cidr.address))
        }
        return .prefix(selector, network: cidr.address, length: cidr.prefixLength, negated: negated)
    }

    private func fixedChains() -> [Chain] {
        let newConnection = Statement.bitTest(.ctState, mask: 0x08, isSet: true)
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
                  rules: [Rule([newConnection, .verdict(.jump(Names.rejectUnserved))])]),
            Chain(name: Names.filterForward, base: BaseChain(type: .filter, hook: .forward, priority: priority.filter),
                  rules: [Rule([newConnection, .verdict(.jump(Names.rejectUnserved))])]),
            Chain(name: Names.filterOutput, base: BaseChain(type: .filter, hook: .output, priority: priority.filter),
                  rules: [Rule([newConnection, .verdict(.jump(Names.rejectUnserved))])]),
            Chain(name: Names.services, rules: services),
            Chain(name: Names.masqueradeOffCluster,
                  rules: podCIDRs.map { Rule([match(saddr, $0, negated: false), .verdict(.return)]) }
                      + [Rule([.setMarkBits(mark)])]),
            Chain(name: Names.markForMasquerade, rules: [Rule([.setMarkBits(mark)])]),
            Chain(name: Names.masquerading, rules: [
                Rule([.bitTest(.ctStatus, mask: 0x20, isSet: true), .lookup([saddr, daddr], set: Sets.hairpinEndpoints),
                      .setMarkBits(mark)]),
                Rule([.bitTest(.mark, mask: mark, isSet: false), .verdict(.return)]),
                Rule([.toggleMarkBits(mark)]),
                Rule([.masquerade(fullyRandom: true)]),
            ]),
            Chain(name: Names.rejectUnserved, rules: rejectUnserved),
            Chain(name: Names.rejectPacket, rules: [
                Rule([.compare(.l4proto, negated: false, .proto(6)), .reject(.tcpReset)]),
                Rule([.reject(.portUnreachable)]),
            ]),
        ]
    }
}
