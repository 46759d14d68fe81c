/// Maps whose keys follow from the rest of a table, so that a read-back can look their
/// elements up by key instead of dumping them (a dump of a large set is quadratic in the
/// kernel; docs/kernel.md).
///
/// A map `M` qualifies when every rule that mentions it is `dnat … to P . numgen random mod
/// N map @M` in a regular chain `C` that nothing jumps to but verdict-map elements, and
/// every verdict map holding such an element is looked up with exactly `P`. A packet then
/// reaches `C` only with `P` equal to the key `K` of the verdict-map element that sent it,
/// so the only keys of `M` it can look up are `K . 0` … `K . N-1`: those are the keys this
/// type derives. nftproxy's backends maps are of this kind (`service-backends-N`, reached
/// through `service-ips`, `short-circuit-ips`, `source-ranges-ips` …), and the compiler
/// puts exactly those keys in them, in the same transaction as the verdict-map elements.
///
/// A key of `M` outside that set can never be looked up by a packet, so a read-back that
/// misses it misses nothing that changes traffic. Maps that rules fill (`update @M`), with
/// timeouts or intervals, or mentioned in any other way are not derived.
public struct DerivedKeys: Sendable {
    /// How packets reach one dnat rule of a derived map.
    struct Entry: Hashable, Sendable {
        /// The chain whose rule looks the map up.
        let chain: String
        /// The selectors before the numgen: the verdict-map key that sends packets to `chain`.
        let prefix: [Selector]
        /// The numgen modulus: the slots are 0 ..< modulus.
        let modulus: UInt32
    }

    /// The derived maps, each with the chains (and moduli) through which packets reach it.
    let entries: [String: [Entry]]

    /// The selectors each verdict map is looked up with, by every rule that does.
    let verdictMapLookups: [String: [[Selector]]]

    /// Sets of connection pairs (see ``pairKeys(of:in:)``), by name.
    let pairSets: Set<String>

    /// Dynamic sets that rules fill with connection pairs (see ``retirements(from:to:removed:)``), by name.
    let countedSets: Set<String>

    /// For counted sets whose rules all sit in one chain that only verdict-map elements
    /// enter, that chain, by set name: a pair is counted there only if its frontend is the
    /// key of such an element.
    let countedSetChains: [String: String]

    /// The names of the maps whose keys this type derives.
    public var maps: Set<String> { Set(entries.keys) }

    /// The names of the sets whose keys follow from the derived maps' elements (read those first).
    public var connectionPairSets: Set<String> { pairSets }

    /// The dynamic sets whose elements the packet path creates for connection pairs
    /// (`update @set { pair }`, and lookups of pairs): their elements are retired when
    /// the derived maps stop holding their pair.
    public var countedPairSets: Set<String> { countedSets }

    /// Finds the derivable maps of `table` from its declarations and rules (elements of the
    /// candidate maps are not needed, and not read).
    public init(_ table: Table) {
        var mentions: [String: Int] = [:]
        var dnatRules: [String: [Entry]] = [:]
        var jumpedTo = Set<String>()
        var vmapLookups: [String: [[Selector]]] = [:]
        var setLookups: [String: [[Selector]]] = [:]
        var setUpdates: [String: [[Selector]]] = [:]
        var setChains: [String: Set<String>] = [:]
        for chain in table.chains {
            for rule in chain.rules {
                for statement in rule.statements {
                    if let set = Self.pairSetUse(statement) { setChains[set, default: []].insert(chain.name) }
                    switch statement {
                    case let .dnatMap(selectors, map, _):
                        mentions[map, default: 0] += 1
                        if case let .randomNumber(modulus)? = selectors.last, modulus > 0, chain.base == nil {
                            dnatRules[map, default: []].append(
                                Entry(chain: chain.name, prefix: Array(selectors.dropLast()), modulus: modulus))
                        }
                    case let .lookup(selectors, set):
                        mentions[set, default: 0] += 1
                        setLookups[set, default: []].append(selectors)
                    case let .updateSet(selectors, set, _):
                        mentions[set, default: 0] += 1
                        setUpdates[set, default: []].append(selectors)
                    case let .verdictMap(selectors, map):
                        mentions[map, default: 0] += 1
                        vmapLookups[map, default: []].append(selectors)
                    case let .verdict(verdict):
                        if let target = verdict.chain { jumpedTo.insert(target) }
                    default:
                        break
                    }
                }
            }
        }
        let sets = Dictionary(table.sets.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var entries: [String: [Entry]] = [:]
        for (map, rules) in dnatRules {
            guard let declaration = sets[map], rules.count == mentions[map], declaration.flags.isEmpty,
                  declaration.timeout == nil, case .fields? = declaration.data,
                  rules.allSatisfy({ rule in
                      // The map's key is the prefix's values and the slot number; nothing but
                      // verdict-map elements enters the chain, and it cannot change the prefix.
                      declaration.key.dataTypes == rule.prefix.map(\.dataType) + [.integer32]
                          && !jumpedTo.contains(rule.chain) && rule.prefix.allSatisfy(Self.isUnchangedBeforeNat)
                  }) else { continue }
            entries[map] = rules
        }
        self.entries = entries
        verdictMapLookups = vmapLookups
        pairSets = Set(table.sets.compactMap { set in
            guard set.data == nil, set.flags.isEmpty, set.timeout == nil, let lookups = setLookups[set.name],
                  lookups.count == mentions[set.name], lookups.allSatisfy(Self.isConnectionPair) else { return nil }
            return set.name
        })
        countedSets = Set(table.sets.compactMap { set in
            guard set.data == nil, set.flags == [.dynamic], set.timeout == nil,
                  let updates = setUpdates[set.name], !updates.isEmpty else { return nil }
            let lookups = setLookups[set.name, default: []]
            guard updates.count + lookups.count == mentions[set.name], updates.allSatisfy(Self.isConnectionPair),
                  lookups.allSatisfy(Self.isConnectionPair) else { return nil }
            return set.name
        })
        let regularChains = Set(table.chains.lazy.filter { $0.base == nil }.map(\.name))
        var chains: [String: String] = [:]
        for set in countedSets {
            guard let holding = setChains[set], holding.count == 1, let chain = holding.first,
                  !jumpedTo.contains(chain), regularChains.contains(chain) else { continue }
            chains[set] = chain
        }
        countedSetChains = chains
    }

    /// The set a lookup or an update statement uses.
    private static func pairSetUse(_ statement: Statement) -> String? {
        switch statement {
        case let .lookup(_, set), let .updateSet(_, set, _): return set
        default: return nil
        }
    }

    /// Whether `selectors` are a connection's destination before DNAT followed by the endpoint
    /// it was translated to: `[ct original <family> daddr .] meta l4proto . ct original proto-dst
    /// . ct reply <family> saddr . ct reply proto-src`.
    private static func isConnectionPair(_ selectors: [Selector]) -> Bool {
        // Read in place: this runs for every lookup and update of every set a sync reads.
        let count = selectors.count
        guard count == 4 || count == 5, case .ctAddress(.source, .reply, _) = selectors[count - 2],
              selectors[count - 1] == .ctPort(.source, .reply) else { return false }
        let proto = count - 4
        if proto == 1 {
            guard case .ctAddress(.destination, .original, _) = selectors[0] else { return false }
        }
        return selectors[proto] == .l4proto && selectors[proto + 1] == .ctPort(.destination, .original)
    }

    /// The keys of the connection-pair set `set`: for every element of a derived map of
    /// `table` (already read) whose prefix and data have the set's types, the prefix (the
    /// frontend) followed by the data (the endpoint it DNATs to).
    ///
    /// A connection-pair set is only looked up with conntrack's pair of a DNATed connection
    /// (frontend before NAT, endpoint after), and the derived maps hold every pair this
    /// table's rules translate to, so a key outside these matches only connections another
    /// program translated: missing it changes no traffic, only what a counter could count.
    /// For a counted pair set (``countedPairSets``) these are the keys its elements can have
    /// (only the pairs of frontends whose verdict-map elements lead to its chain, when its
    /// rules sit in one chain that only such elements enter).
    /// - Returns: nil when `set` is neither.
    public func pairKeys(of set: String, in table: Table) -> [[Value]]? {
        guard pairSets.contains(set) || countedSets.contains(set),
              let declaration = table.sets.first(where: { $0.name == set }) else { return nil }
        let wanted = declaration.key.dataTypes
        // A counted set whose chain only verdict-map elements enter holds pairs of their frontends only.
        var routed: Set<[Value]>?
        if let chain = countedSetChains[set] {
            var frontends = Set<[Value]>()
            for vmap in table.sets where vmap.data == .verdict {
                for element in vmap.elements {
                    if case let .verdict(verdict)? = element.data, verdict.chain == chain { frontends.insert(element.key) }
                }
            }
            routed = frontends
        }
        var seen = Set<[Value]>()
        var keys: [[Value]] = []
        for map in table.sets where entries[map.name] != nil {
            guard case let .fields(data)? = map.data,
                  Array(map.key.dataTypes.dropLast()) + data.dataTypes == wanted else { continue }
            for element in map.elements {
                guard case let .values(endpoint)? = element.data else { continue }
                if let routed, !routed.contains(Array(element.key.dropLast())) { continue }
                let key = Array(element.key.dropLast()) + endpoint
                if seen.insert(key).inserted { keys.append(key) }
            }
        }
        return keys
    }

    /// The elements of `current`'s counted pair sets to retire when it becomes `desired`:
    /// a pair (frontend . endpoint) that an element of a derived map of `current` held,
    /// `removed` from it by the change, and that no derived map of `desired` holds any more
    /// (the endpoint left that frontend); and every element `current` shows in such a set
    /// (what a read-back found) whose pair `desired` does not hold.
    ///
    /// A packet creates such an element only for a pair a derived map sent it to, so once
    /// the pair is gone from the maps the element counts nothing new: retiring it makes a
    /// removed endpoint's counts go with it, and a later endpoint of the same address start
    /// from zero.
    /// - Parameter removed: the elements the change removes from each map of `current`, by name.
    /// - Returns: the keys to retire, by set name (sets of `desired` only).
    public static func retirements(from current: Table, to desired: Table,
                                   removed: [String: [SetElement]]) -> [String: [SetElement]] {
        let wanted = DerivedKeys(desired)
        guard !wanted.countedSets.isEmpty else { return [:] }
        // An incremental change keeps the chains and declarations: derive them once.
        let before = sameShape(current, desired) ? wanted : DerivedKeys(current)
        // Candidate pairs, grouped by the types of their values.
        var candidates: [[DataType]: [[Value]]] = [:]
        var frontends = Set<[Value]>()
        for map in current.sets where before.entries[map.name] != nil {
            guard let elements = removed[map.name], case let .fields(data)? = map.data else { continue }
            let types = Array(map.key.dataTypes.dropLast()) + data.dataTypes
            for element in elements {
                guard case let .values(endpoint)? = element.data else { continue }
                let frontend = Array(element.key.dropLast())
                candidates[types, default: []].append(frontend + endpoint)
                frontends.insert(frontend)
            }
        }
        let currentSets = Dictionary(current.sets.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var known: [String: [SetElement]] = [:]
        for set in desired.sets where wanted.countedSets.contains(set.name) {
            guard let elements = currentSets[set.name]?.elements, !elements.isEmpty else { continue }
            known[set.name] = elements
            for element in elements { frontends.insert(Array(element.key.dropLast(2))) }
        }
        guard !candidates.isEmpty || !known.isEmpty else { return [:] }
        // Which chains verdict-map elements send each frontend to, where counted sets sit
        // in such chains (elements of either table: a frontend may be gone from one).
        var routes: [[Value]: Set<String>] = [:]
        let countingChains = Set(wanted.countedSetChains.values).union(before.countedSetChains.values)
        if !countingChains.isEmpty {
            for table in [current, desired] {
                for vmap in table.sets where vmap.data == .verdict {
                    for element in vmap.elements {
                        guard case let .verdict(verdict)? = element.data, let target = verdict.chain,
                              countingChains.contains(target), frontends.contains(element.key) else { continue }
                        routes[element.key, default: []].insert(target)
                    }
                }
            }
        }
        // The pairs `desired` still holds for those frontends. A frontend's first value (its
        // address, or a NodePort's protocol) sorts out nearly every other element without
        // building its key's prefix.
        let firstValues = Set(frontends.compactMap(\.first))
        var kept = Set<[Value]>()
        for map in desired.sets where wanted.entries[map.name] != nil {
            for element in map.elements {
                guard let first = element.key.first, firstValues.contains(first),
                      case let .values(endpoint)? = element.data else { continue }
                let frontend = Array(element.key.dropLast())
                if frontends.contains(frontend) { kept.insert(frontend + endpoint) }
            }
        }
        var retired: [String: [SetElement]] = [:]
        for set in desired.sets where wanted.countedSets.contains(set.name) {
            // In the order found, each once.
            var seen = Set<[Value]>()
            // A pair whose frontend is routed elsewhere cannot be in this set.
            let chain = wanted.countedSetChains[set.name]
            let routed = (candidates[set.key.dataTypes] ?? []).filter { pair in
                guard let chain, let targets = routes[Array(pair.dropLast(2))] else { return true }
                return targets.contains(chain)
            }
            let pairs = routed + (known[set.name] ?? []).map(\.key)
            let keys = pairs.filter { !kept.contains($0) && seen.insert($0).inserted }
            if !keys.isEmpty { retired[set.name] = keys.map { SetElement(key: $0) } }
        }
        return retired
    }

    /// Whether two tables have the same chains and set declarations (elements aside), which
    /// is all the derivation looks at.
    private static func sameShape(_ one: Table, _ other: Table) -> Bool {
        one.chains == other.chains && one.sets.count == other.sets.count
            && zip(one.sets, other.sets).allSatisfy { first, second in
                first.name == second.name && first.key == second.key && first.data == second.data
                    && first.flags == second.flags && first.timeout == second.timeout
            }
    }

    /// Selectors whose value a rule of the chain cannot change before its dnat (the chain
    /// may set the mark; nothing else it does alters these).
    private static func isUnchangedBeforeNat(_ selector: Selector) -> Bool {
        switch selector {
        case .address, .transportDestinationPort, .l4proto: return true
        default: return false
        }
    }

    /// The keys of `map` that `table`'s verdict maps (with their elements) make reachable,
    /// without duplicates, in the order of the verdict maps' elements and their slots.
    ///
    /// - Returns: nil when `map` is not derived, or when a verdict-map element sends packets
    ///   to one of its chains from a verdict map looked up with other selectors than the
    ///   chain's rule (or declared with other types, or with ranges): then the keys do not follow.
    /// - Parameter skipping: verdict-map keys (frontends) whose keys are left out.
    public func keys(of map: String, in table: Table, skipping: Set<[Value]> = []) -> [[Value]]? {
        guard let mapEntries = entries[map] else { return nil }
        var byChain: [String: [Entry]] = [:]
        for entry in mapEntries { byChain[entry.chain, default: []].append(entry) }
        var seen = Set<[Value]>()
        var keys: [[Value]] = []
        for vmap in table.sets where vmap.data == .verdict {
            let lookups = verdictMapLookups[vmap.name, default: []]
            for element in vmap.elements {
                guard case let .verdict(verdict)? = element.data, let target = verdict.chain,
                      let chainEntries = byChain[target] else { continue }
                for entry in chainEntries {
                    guard element.keyEnd == nil, vmap.key.dataTypes == entry.prefix.map(\.dataType),
                          lookups.allSatisfy({ $0 == entry.prefix }) else { return nil }
                    if !skipping.isEmpty, skipping.contains(element.key) { continue }
                    for slot in 0..<entry.modulus {
                        let key = element.key + [.integer(slot)]
                        if seen.insert(key).inserted { keys.append(key) }
                    }
                }
            }
        }
        return keys
    }
}
