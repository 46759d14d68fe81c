import Nftables
import ServiceModel

/// A service frontend as a table of nftproxy's layout holds it: read from the elements of
/// the dispatch sets and backend maps, so a table read back from the kernel says which
/// frontends it serves and where each one balances to, without the objects it came from.
public struct ProgrammedFrontend: Hashable, Sendable {
    /// What kind of address the frontend answers on.
    public enum Kind: String, Hashable, Sendable {
        /// A ClusterIP (its address is in `cluster-ips`).
        case clusterIP
        /// An externalIP or LoadBalancer IP (balanced with masquerading).
        case external
        /// A NodePort on the node's addresses.
        case nodePort

        /// The kind of a compiled frontend.
        init(_ kind: FrontendKind) {
            switch kind {
            case .clusterIP: self = .clusterIP
            case .external: self = .external
            case .nodePort: self = .nodePort
            }
        }
    }

    /// Identifies a frontend: family, address (nil for a NodePort), protocol and port.
    public struct Key: Hashable, Comparable, Sendable, CustomStringConvertible {
        public var family: IPFamily
        public var address: IPAddress?
        public var transport: TransportProtocol
        public var port: UInt16

        public init(family: IPFamily, address: IPAddress?, transport: TransportProtocol, port: UInt16) {
            self.family = family; self.address = address; self.transport = transport; self.port = port
        }

        /// The key of a dispatch or no-endpoint element: `address . protocol . port`, or
        /// `protocol . port` for a NodePort; nil for anything else.
        public init?(elementKey values: [Value], family: IPFamily) {
            self.init(elementKey: values[...], family: family)
        }

        /// The same, from part of a longer key (a pair's frontend).
        public init?(elementKey values: ArraySlice<Value>, family: IPFamily) {
            var rest = values
            var address: IPAddress?
            if case .address(let found)? = rest.first { address = found; rest = rest.dropFirst() }
            guard rest.count == 2, case .proto(let number)? = rest.first, case .port(let port)? = rest.last,
                  let transport = TransportProtocol.allCases.first(where: { $0.number == number }) else { return nil }
            self.init(family: family, address: address, transport: transport, port: port)
        }

        /// `198.18.0.10:80/tcp`, `[2001:db8::1]:80/tcp`, `NodePort 32000/tcp (IPv4)`.
        public var description: String {
            guard let address else { return "NodePort \(port)/\(transport) (\(family))" }
            return (family == .v6 ? "[\(address)]" : "\(address)") + ":\(port)/\(transport)"
        }

        /// By family, then addresses before NodePorts, address, protocol and port.
        public static func < (lhs: Key, rhs: Key) -> Bool {
            if lhs.family != rhs.family { return lhs.family.rawValue < rhs.family.rawValue }
            switch (lhs.address, rhs.address) {
            case (let left?, let right?) where left != right: return left < right
            case (nil, _?): return false
            case (_?, nil): return true
            default: return (lhs.transport, lhs.port) < (rhs.transport, rhs.port)
            }
        }
    }

    /// One endpoint's address and port, in its numgen slot's order.
    public struct Target: Hashable, Comparable, Sendable, CustomStringConvertible {
        public var address: IPAddress
        public var port: UInt16

        public init(address: IPAddress, port: UInt16) { self.address = address; self.port = port }

        public var description: String { address.family == .v6 ? "[\(address)]:\(port)" : "\(address):\(port)" }
        public static func < (lhs: Target, rhs: Target) -> Bool { (lhs.address, lhs.port) < (rhs.address, rhs.port) }
    }

    public var key: Key
    public var kind: Kind
    /// The endpoints it balances to, by slot; empty: refused (no endpoints), or dropped
    /// when `localTargets` is an empty list. With externalTrafficPolicy Local: where pods'
    /// and the node's own traffic goes.
    public var targets: [Target]
    /// externalTrafficPolicy Local: where external traffic goes (this node's endpoints), by
    /// slot; empty: dropped. internalTrafficPolicy Local without local endpoints: empty
    /// (ClusterIP traffic dropped). nil otherwise.
    public var localTargets: [Target]?

    public init(key: Key, kind: Kind, targets: [Target], localTargets: [Target]? = nil) {
        self.key = key; self.kind = kind; self.targets = targets; self.localTargets = localTargets
    }

    /// Every frontend the tables of `ruleset` serve, by key. Elements that do not fit the
    /// layout (a foreign or damaged table) are left out.
    public static func read(_ ruleset: Ruleset) -> [Key: ProgrammedFrontend] {
        var frontends: [Key: ProgrammedFrontend] = [:]
        for table in ruleset.tables where table.name == RulesetLayout.tableName {
            for frontend in read(table) { frontends[frontend.key] = frontend }
        }
        return frontends
    }

    /// The frontends of one table.
    public static func read(_ table: Table) -> [ProgrammedFrontend] {
        typealias Sets = RulesetLayout.SetName
        let family: IPFamily = table.family == .ip ? .v4 : .v6
        let sets = Dictionary(table.sets.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let clusterIPs = Set(sets[Sets.clusterIPs]?.elements.compactMap { element -> IPAddress? in
            if case .address(let address)? = element.key.first { return address } else { return nil }
        } ?? [])
        // Backend maps: the frontend part of the key -> the targets by slot.
        var backends: [String: [[Value]: [Int: Target]]] = [:]
        let backendPrefixes = [Sets.serviceBackendsPrefix, Sets.nodePortBackendsPrefix, Sets.localBackendsPrefix,
                               Sets.nodePortLocalBackendsPrefix]
        for set in table.sets where backendPrefixes.contains(where: set.name.hasPrefix) {
            var byFrontend: [[Value]: [Int: Target]] = [:]
            for element in set.elements {
                guard case .integer(let slot)? = element.key.last, case .values(let data)? = element.data,
                      data.count == 2, case .address(let address) = data[0], case .port(let port) = data[1] else { continue }
                byFrontend[Array(element.key.dropLast()), default: [:]][Int(slot)] = Target(address: address, port: port)
            }
            backends[set.name] = byFrontend
        }

        var frontends: [ProgrammedFrontend] = []
        func key(_ values: [Value]) -> Key? { Key(elementKey: values, family: family) }
        // Session affinity: an affinity chain stands for the bucket its verdict map names.
        let affinityMaps = Dictionary(AffinityPath.allCases.map { ($0.chainName, $0.bucketsMapName) },
                                      uniquingKeysWith: { first, _ in first })
        var affinityBuckets: [String: [[Value]: ElementData]] = [:]
        for name in affinityMaps.values {
            for element in sets[name]?.elements ?? [] { affinityBuckets[name, default: [:]][element.key] = element.data }
        }
        /// The targets of a `goto <bucket chain>` verdict for a frontend; nil: not a bucket.
        func targets(_ verdict: ElementData?, _ elementKey: [Value]) -> (Kind, [Target])? {
            var verdict = verdict
            if case .verdict(.goto(let chain))? = verdict, let map = affinityMaps[chain] {
                verdict = affinityBuckets[map]?[elementKey]
            }
            guard case .verdict(.goto(let chain))? = verdict, let (kind, count, map) = bucket(chain) else { return nil }
            let slots = backends[map]?[elementKey] ?? [:]
            return (kind, (0..<count).compactMap { slots[$0] })
        }
        // The Local-policy maps, indexed by key.
        var policyData: [String: [[Value]: ElementData]] = [:]
        for name in [Sets.shortCircuitIPs, Sets.localPolicyIPs, Sets.shortCircuitNodePorts, Sets.localPolicyNodePorts,
                     Sets.sourceRangeIPs] {
            for element in sets[name]?.elements ?? [] { policyData[name, default: [:]][element.key] = element.data }
        }
        /// The element data of `elementKey` in the Local-policy map named `name`.
        func data(_ name: String, _ elementKey: [Value]) -> ElementData? { policyData[name]?[elementKey] }
        let policies: [String: (Kind, String, String)] = [
            RulesetLayout.ChainName.externalLocalPolicy: (.external, Sets.shortCircuitIPs, Sets.localPolicyIPs),
            RulesetLayout.ChainName.nodePortLocalPolicy: (.nodePort, Sets.shortCircuitNodePorts, Sets.localPolicyNodePorts),
        ]
        for setName in [Sets.serviceIPs, Sets.serviceNodePorts] {
            for var element in sets[setName]?.elements ?? [] {
                guard let key = key(element.key) else { continue }
                // Behind a source-range check: where allowed sources go.
                if case .verdict(.goto(RulesetLayout.ChainName.sourceRangesCheck))? = element.data {
                    element.data = data(Sets.sourceRangeIPs, element.key)
                }
                if case .verdict(.drop)? = element.data {
                    frontends.append(ProgrammedFrontend(key: key, kind: .clusterIP, targets: [], localTargets: []))
                } else if let (kind, list) = targets(element.data, element.key) {
                    frontends.append(ProgrammedFrontend(key: key, kind: kind, targets: list))
                } else if case .verdict(.goto(let chain))? = element.data, let (kind, shortCircuit, local) = policies[chain],
                          let (_, list) = targets(data(shortCircuit, element.key), element.key) {
                    let localData = data(local, element.key)
                    let localList: [Target]? = if case .verdict(.drop)? = localData { [] } else {
                        targets(localData, element.key).map(\.1)
                    }
                    guard let localList else { continue }
                    frontends.append(ProgrammedFrontend(key: key, kind: kind, targets: list, localTargets: localList))
                }
            }
        }
        for setName in [Sets.noEndpointServices, Sets.noEndpointNodePorts] {
            for element in sets[setName]?.elements ?? [] {
                guard let key = key(element.key) else { continue }
                let kind: Kind = key.address.map { clusterIPs.contains($0) ? .clusterIP : .external } ?? .nodePort
                frontends.append(ProgrammedFrontend(key: key, kind: kind, targets: []))
            }
        }
        return frontends
    }

    /// The kind, endpoint count and backends map of a bucket chain's name.
    private static func bucket(_ chain: String) -> (Kind, Int, String)? {
        typealias Chains = RulesetLayout.ChainName
        typealias Sets = RulesetLayout.SetName
        let prefixes: [(String, Kind, (Int) -> String)] = [
            (String(Chains.serviceBalancer(0).dropLast()), .clusterIP, Sets.serviceBackends),
            (String(Chains.externalBalancer(0).dropLast()), .external, Sets.serviceBackends),
            (String(Chains.nodePortBalancer(0).dropLast()), .nodePort, Sets.nodePortBackends),
            (String(Chains.localBalancer(0).dropLast()), .external, Sets.localBackends),
            (String(Chains.nodePortLocalBalancer(0).dropLast()), .nodePort, Sets.nodePortLocalBackends),
            (String(Chains.nodePortDirectBalancer(0).dropLast()), .nodePort, Sets.nodePortBackends),
        ]
        for (prefix, kind, map) in prefixes where chain.hasPrefix(prefix) {
            guard let count = Int(chain.dropFirst(prefix.count)), count > 0 else { return nil }
            return (kind, count, map(count))
        }
        return nil
    }
}

/// How one frontend differs between two rulesets.
public struct FrontendChange: Hashable, Sendable {
    public var key: ProgrammedFrontend.Key
    /// The frontend before; nil when it is new.
    public var before: ProgrammedFrontend?
    /// The frontend after; nil when it goes.
    public var after: ProgrammedFrontend?

    /// Endpoints only the new frontend balances to.
    public var addedTargets: [ProgrammedFrontend.Target] {
        Array(Set(after?.targets ?? []).subtracting(before?.targets ?? [])).sorted()
    }
    /// Endpoints only the old frontend balanced to.
    public var removedTargets: [ProgrammedFrontend.Target] {
        Array(Set(before?.targets ?? []).subtracting(after?.targets ?? [])).sorted()
    }

    /// Every frontend that differs from `before` to `after` (endpoints compared as sets: a
    /// renumbering of slots alone is no change), in key order.
    public static func changes(from before: Ruleset, to after: Ruleset) -> [FrontendChange] {
        let old = ProgrammedFrontend.read(before), new = ProgrammedFrontend.read(after)
        var changes: [FrontendChange] = []
        for key in Set(old.keys).union(new.keys).sorted() {
            let previous = old[key], next = new[key]
            if let previous, let next, previous.kind == next.kind, Set(previous.targets) == Set(next.targets),
               previous.localTargets.map(Set.init) == next.localTargets.map(Set.init) { continue }
            changes.append(FrontendChange(key: key, before: previous, after: next))
        }
        return changes
    }
}
