import Nftables
import ServiceModel

/// What a change of services does to nftproxy's tables: the affected part of the ruleset
/// before and after. Both hold every set, map and chain that exists at that moment, but
/// only the elements the change touched, so `TableDiff` of the two is exactly the batch
/// the change needs and `StaleFlows` of the two exactly its conntrack cleanup.
public struct RulesetChange: Sendable {
    public var before: Ruleset
    public var after: Ruleset
    /// The services that changed (added, modified or removed).
    public var services: [ServiceName]
    /// Warnings about the changed services, as the compiler gives them.
    public var warnings: [Diagnostic]
    /// How many elements each set of each table holds after the change, by set name.
    public var counts: [TableFamily: [String: Int]] = [:]
}

/// The compiled state of every service on a node, kept so that a change of services costs
/// what changed rather than a recompilation of the whole map.
///
/// It holds, per family, every frontend each service claims (with the winner of each
/// conflict, as `Compiler` picks it), and reference counts for what frontends share: the
/// ClusterIPs in `cluster-ips`, local endpoints in `hairpin-endpoints`, and buckets.
/// Applying a new map compares it with the previous one service by service, updates only
/// the changed services' frontends and describes the effect as a `RulesetChange`.
/// The result always agrees with `Compiler.compile` of the new map (tests check this).
public struct CompiledServices: Sendable {
    public let node: NodeConfig
    /// The services of the map last applied, sorted by name.
    private var services: [Service]
    private var families: [FamilyState]

    public init(node: NodeConfig, map: ServiceMap) {
        self.node = node
        services = map.services
        families = [(TableFamily.ip, IPFamily.v4), (.ip6, .v6)].map { family, ipFamily in
            var state = FamilyState(compiler: FamilyCompiler(family: family, ipFamily: ipFamily, node: node))
            state.claimAll(map.services)
            return state
        }
    }

    /// Moves to `map` and returns what that changes in the tables (nothing: no changed services).
    ///
    /// - Parameter changed: the names of the services that may differ from the previous map,
    ///   when the caller knows them (a daemon does, from its watch events); the others are
    ///   then taken to be unchanged and not compared, and the cost does not grow with the
    ///   number of services: the named services are found by binary search and updated in
    ///   this value's own list, which does not share the caller's. nil: compare every service.
    public mutating func apply(_ map: ServiceMap, changed: Set<ServiceName>? = nil) -> RulesetChange {
        let changes: [(old: Service?, new: Service?)]
        if let changed {
            changes = changed.sorted().compactMap { name in
                let pair = (old: Self.find(name, in: services).map { services[$0] },
                            new: Self.find(name, in: map.services).map { map.services[$0] })
                return pair.old == pair.new ? nil : pair
            }
            for (old, new) in changes {
                guard let name = (new ?? old)?.name else { continue }
                let index = services.position(of: name)
                switch (old, new) {
                case (_?, let new?): services[index] = new
                case (_?, nil): services.remove(at: index)
                case (nil, let new?): services.insert(new, at: index)
                case (nil, nil): break
                }
            }
        } else {
            changes = Self.changes(from: services, to: map.services)
            services = map.services
        }
        var change = RulesetChange(before: Ruleset(tables: []), after: Ruleset(tables: []),
                                   services: changes.compactMap { ($0.new ?? $0.old)?.name }, warnings: [])
        guard !changes.isEmpty else { return change }
        change.warnings = changes.compactMap(\.new).flatMap(affinityWarnings)
        for index in families.indices {
            let (before, after, conflicts) = families[index].apply(changes)
            change.before.tables.append(before)
            change.after.tables.append(after)
            change.counts[after.family] = families[index].setCounts
            change.warnings += conflicts.filter { !change.warnings.contains($0) }
        }
        return change
    }

    /// The index of the service of this name in a name-sorted list.
    static func find(_ name: ServiceName, in list: [Service]) -> Int? {
        let index = list.position(of: name)
        return index < list.count && list[index].name == name ? index : nil
    }

    /// Services that differ between two name-sorted lists, as (old, new) pairs.
    ///
    /// Cheap when little changed: unchanged services usually share their storage with the
    /// previous map, and `==` of identical strings and arrays returns without looking inside
    /// (ordering names, which compares their characters, is only needed where they differ).
    static func changes(from old: [Service], to new: [Service]) -> [(old: Service?, new: Service?)] {
        var result: [(old: Service?, new: Service?)] = []
        old.withUnsafeBufferPointer { old in
            new.withUnsafeBufferPointer { new in
                var i = 0, j = 0
                while i < old.count || j < new.count {
                    if i < old.count, j < new.count, old[i].name == new[j].name {
                        if old[i] != new[j] { result.append((old[i], new[j])) }
                        i += 1; j += 1
                    } else if j == new.count || (i < old.count && old[i].name < new[j].name) {
                        result.append((old[i], nil)); i += 1
                    } else {
                        result.append((nil, new[j])); j += 1
                    }
                }
            }
        }
        return result
    }
}

/// The compiled state of one family's table.
private struct FamilyState: Sendable {
    let compiler: FamilyCompiler
    /// Every service's frontends by key, in service-name order: the first one is served.
    var claims: [FrontendKey: [Frontend]] = [:]
    var clusterIPReferences: [IPAddress: Int] = [:]
    var localEndpointReferences: [IPAddress: Int] = [:]
    var bucketReferences: [Bucket: Int] = [:]
    var shapeReferences: [PolicyChain: Int] = [:]
    /// The ranges each source-range group allows, with how many served frontends claim each.
    var sourceRangeGroups: [SourceRangeGroup: [CIDR: Int]] = [:]
    /// Elements of `source-ranges`: the outermost ranges of every group.
    var sourceRangeElementCount = 0
    /// Dispatch elements per set, and backend elements per map, of the served frontends.
    var dispatchCounts: [DispatchSet: Int] = [:]
    var backendCounts: [String: Int] = [:]
    /// Elements of the digest sets: served frontends with backends.
    var digestCounts: [String: Int] = [:]

    init(compiler: FamilyCompiler) { self.compiler = compiler }

    /// How many elements each set of the table holds, by set name.
    var setCounts: [String: Int] {
        var counts = backendCounts
        for set in DispatchSet.allCases { counts[set.setName] = dispatchCounts[set] ?? 0 }
        counts[RulesetLayout.SetName.clusterIPs] = clusterIPReferences.count
        counts[RulesetLayout.SetName.hairpinEndpoints] = localEndpointReferences.count
        counts[RulesetLayout.SetName.sourceRanges] = sourceRangeElementCount
        for set in FrontendDigest.setNames { counts[set] = digestCounts[set] ?? 0 }
        if compiler.node.endpointCounters {
            // Copies of the dispatch maps' keys.
            counts[EndpointTrafficLayout.serviceFrontendSet] = counts[DispatchSet.serviceIPs.setName]
            counts[EndpointTrafficLayout.nodePortFrontendSet] = counts[DispatchSet.serviceNodePorts.setName]
        }
        return counts
    }

    /// The elements of `source-ranges` for one group, as it stands.
    func sourceRangeElements(_ group: SourceRangeGroup) -> [SetElement] {
        guard let ranges = sourceRangeGroups[group] else { return [] }
        return FamilyCompiler.sourceRangeElements(group, Array(ranges.keys))
    }

    /// Claims the frontends of services given in name order, and counts what the winners use.
    mutating func claimAll(_ services: [Service]) {
        for service in services {
            for frontend in frontends(of: service, family: compiler.ipFamily, node: compiler.node.nodeName, zone: compiler.node.zone) {
                claims[frontend.key, default: []].append(frontend)
            }
        }
        for list in claims.values { reference(list[0], by: 1) }
        sourceRangeElementCount = sourceRangeGroups.reduce(0) { $0 + sourceRangeElements($1.key).count }
    }

    /// Adds (+1) or removes (-1) what a served frontend contributes to the shared counts.
    mutating func reference(_ frontend: Frontend, by delta: Int) {
        func count<Key: Hashable>(_ key: Key, in counts: inout [Key: Int]) {
            let value = (counts[key] ?? 0) + delta
            counts[key] = value == 0 ? nil : value
        }
        if frontend.kind == .clusterIP, let address = frontend.address { count(address, in: &clusterIPReferences) }
        for list in [frontend.endpoints, frontend.local ?? []] {
            for endpoint in list where compiler.isPossiblyLocal(endpoint) {
                count(endpoint.address, in: &localEndpointReferences)
            }
        }
        let plan = compiler.plan(for: frontend)
        for (set, _) in plan.dispatch { count(set, in: &dispatchCounts) }
        if !plan.buckets.isEmpty {
            // Its key has no address (`protocol . port`) exactly when `entries(for:)` gives it none.
            let isNodePort = frontend.kind == .nodePort || frontend.address == nil
            digestCounts[isNodePort ? FrontendDigest.nodePortSetName : FrontendDigest.setName, default: 0] += delta
        }
        for (bucket, endpoints) in plan.buckets {
            count(bucket, in: &bucketReferences)
            backendCounts[bucket.mapName, default: 0] += delta * endpoints.count
            if backendCounts[bucket.mapName] == 0 { backendCounts[bucket.mapName] = nil }
        }
        for shape in plan.shapes { count(shape, in: &shapeReferences) }
        if let affinity = plan.affinityEndpoints {
            backendCounts[affinity.set, default: 0] += delta * affinity.endpoints.count
            if backendCounts[affinity.set] == 0 { backendCounts[affinity.set] = nil }
        }
        if let (group, ranges) = compiler.sourceRangeClaims(for: frontend) {
            var counts = sourceRangeGroups[group] ?? [:]
            for range in ranges { count(range, in: &counts) }
            sourceRangeGroups[group] = counts.isEmpty ? nil : counts
        }
    }

    /// Applies service changes; returns the affected part of the table before and after,
    /// and the conflicts the changed services are part of.
    mutating func apply(_ changes: [(old: Service?, new: Service?)]) -> (Table, Table, [Diagnostic]) {
        let family = compiler.ipFamily
        let (node, zone) = (compiler.node.nodeName, compiler.node.zone)
        let removed = changes.flatMap { $0.old.map { frontends(of: $0, family: family, node: node, zone: zone) } ?? [] }
        let added = changes.flatMap { $0.new.map { frontends(of: $0, family: family, node: node, zone: zone) } ?? [] }
        var touched: [FrontendKey] = []
        var servedBefore: [FrontendKey: Frontend?] = [:]
        for frontend in removed + added where servedBefore.index(forKey: frontend.key) == nil {
            touched.append(frontend.key)
            servedBefore.updateValue(claims[frontend.key]?.first, forKey: frontend.key)
        }
        let bucketsBefore = Set(bucketReferences.keys)
        let shapesBefore = Set(shapeReferences.keys)
        let countsBefore = setCounts

        for frontend in removed {
            claims[frontend.key]?.removeAll { $0.service == frontend.service }
            if claims[frontend.key]?.isEmpty == true { claims[frontend.key] = nil }
        }
        for frontend in added {
            var list = claims[frontend.key] ?? []
            list.insert(frontend, at: list.firstIndex { FrontendClaims.wins(frontend.service, over: $0.service) } ?? list.count)
            claims[frontend.key] = list
        }

        var before = TableContents(), after = TableContents()
        var sharedBefore = SharedPresence()
        for key in touched {
            let old = servedBefore[key] ?? nil
            let new = claims[key]?.first
            guard old != new else { continue }
            if let old {
                sharedBefore.note(old, compiler: compiler, clusterIPs: clusterIPReferences, local: localEndpointReferences,
                                  sourceRanges: self)
                before.add(compiler.entries(for: old))
                reference(old, by: -1)
            }
            if let new {
                sharedBefore.note(new, compiler: compiler, clusterIPs: clusterIPReferences, local: localEndpointReferences,
                                  sourceRanges: self)
                reference(new, by: 1)
                after.add(compiler.entries(for: new))
            }
        }
        // A shared element is in a table while some served frontend uses it.
        for (address, present) in sharedBefore.clusterIPs.sorted(by: { $0.key < $1.key }) {
            if present { before.clusterIPs.append(address) }
            if clusterIPReferences[address] != nil { after.clusterIPs.append(address) }
        }
        for (address, present) in sharedBefore.localEndpoints.sorted(by: { $0.key < $1.key }) {
            if present { before.localEndpoints.append(address) }
            if localEndpointReferences[address] != nil { after.localEndpoints.append(address) }
        }
        // A group's elements are recomputed as a whole: a range may hide or uncover others.
        for group in sharedBefore.rangeGroupOrder {
            let old = sharedBefore.rangeGroups[group] ?? [], new = sourceRangeElements(group)
            before.sourceRanges += old
            after.sourceRanges += new
            sourceRangeElementCount += new.count - old.count
        }
        before.buckets = bucketsBefore
        after.buckets = Set(bucketReferences.keys)
        before.shapes = shapesBefore
        after.shapes = Set(shapeReferences.keys)
        before.counts = countsBefore
        after.counts = setCounts

        var conflicts: [Diagnostic] = []
        for key in touched {
            guard let list = claims[key], let winner = list.first else { continue }
            for loser in list.dropFirst() where loser.service != winner.service {
                conflicts.append(conflictWarning(loser, keptBy: winner.service))
            }
        }
        return (compiler.table(before), compiler.table(after), conflicts)
    }
}

/// Whether shared elements (ClusterIPs, local endpoints) were present before a change,
/// noted the first time the change touches them.
private struct SharedPresence {
    var clusterIPs: [IPAddress: Bool] = [:]
    var localEndpoints: [IPAddress: Bool] = [:]
    /// The elements of each source-range group the change touches, before it.
    var rangeGroups: [SourceRangeGroup: [SetElement]] = [:]
    var rangeGroupOrder: [SourceRangeGroup] = []

    mutating func note(_ frontend: Frontend, compiler: FamilyCompiler,
                       clusterIPs counts: [IPAddress: Int], local localCounts: [IPAddress: Int],
                       sourceRanges state: FamilyState) {
        if let (group, _) = compiler.sourceRangeClaims(for: frontend), rangeGroups[group] == nil {
            rangeGroups[group] = state.sourceRangeElements(group)
            rangeGroupOrder.append(group)
        }
        if frontend.kind == .clusterIP, let address = frontend.address, clusterIPs[address] == nil {
            clusterIPs[address] = counts[address] != nil
        }
        for list in [frontend.endpoints, frontend.local ?? []] {
            for endpoint in list where compiler.isPossiblyLocal(endpoint) && localEndpoints[endpoint.address] == nil {
                localEndpoints[endpoint.address] = localCounts[endpoint.address] != nil
            }
        }
    }
}
