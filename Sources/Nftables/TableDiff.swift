/// Computes the smallest transaction that turns one table into another.
///
/// Elements are added and deleted one by one; a chain whose rules differ is flushed and
/// refilled (chains are small: every chain nftproxy writes has a handful of rules); what
/// is no longer wanted is removed after everything that referenced it. Only when a set
/// changes its declaration or outgrows its size, or a base chain changes its hook, is the
/// whole table replaced. A set that keeps its declaration keeps its size in the kernel
/// while its elements fit, whatever size `desired` asks for (`result(from:to:)`).
public enum TableDiff {
    /// The operations that turn `current` (nil: no such table) into `desired`.
    ///
    /// - Parameter untrusted: chains whose rules could not be read back and must be
    ///   rewritten whatever they seem to hold.
    public static func transaction(from current: Table?, to desired: Table,
                                   untrusted: Set<String> = []) -> Transaction {
        var transaction = Transaction()
        guard let current else {
            transaction.create(desired)
            return transaction
        }
        let family = desired.family
        let table = desired.name
        let currentSets = byName(current.sets, \.name)
        let currentChains = byName(current.chains, \.name)
        let desiredSetNames = Set(desired.sets.map(\.name))
        let desiredChainNames = Set(desired.chains.map(\.name))

        // Incompatible declarations: replace the table as a whole.
        if needsReplacement(currentSets, currentChains, desired) {
            transaction.replace(desired)
            return transaction
        }

        // 1. New chains (empty, so elements and rules can refer to them).
        let newChains = desired.chains.filter { currentChains[$0.name] == nil }
        for chain in newChains {
            transaction.append(.addChain(family, table: table, Chain(name: chain.name, base: chain.base)))
        }
        // 2. New sets with their elements; element changes of existing sets.
        var removed: [String: [SetElement]] = [:]
        for set in desired.sets {
            guard let existing = currentSets[set.name] else {
                transaction.append(.addSet(family, table: table, set.withoutElements))
                transaction.addElements(set.elements, to: set, family: family, table: table)
                continue
            }
            // A dynamic set's elements are the packet path's (`update @set`): left alone.
            if set.flags.contains(.dynamic) { continue }
            let change = ElementChange(from: existing.elements, to: set.elements)
            transaction.deleteElements(change.removed, from: set, family: family, table: table)
            transaction.addElements(change.added, to: set, family: family, table: table)
            if !change.removed.isEmpty { removed[set.name] = change.removed }
        }
        for set in current.sets where !desiredSetNames.contains(set.name) { removed[set.name] = set.elements }
        // Elements the packet path made for pairs that are gone (``DerivedKeys/retirements``).
        let retired = DerivedKeys.retirements(from: current, to: desired, removed: removed)
        for set in desired.sets {
            guard let elements = retired[set.name] else { continue }
            transaction.destroyElements(elements, from: set, family: family, table: table)
        }
        // 3. Rules of new chains and of chains whose rules changed.
        for chain in desired.chains {
            if let existing = currentChains[chain.name] {
                guard existing.rules != chain.rules || untrusted.contains(chain.name) else { continue }
                transaction.append(.flushChain(family, table: table, chain: chain.name))
            }
            for rule in chain.rules {
                transaction.append(.addRule(family, table: table, chain: chain.name, rule))
            }
        }
        // 4. What is no longer wanted: rules of obsolete chains first (they may refer to
        //    obsolete sets and chains), then sets, then the chains themselves.
        let obsoleteChains = current.chains.filter { !desiredChainNames.contains($0.name) }
        for chain in obsoleteChains where !chain.rules.isEmpty || untrusted.contains(chain.name) {
            transaction.append(.flushChain(family, table: table, chain: chain.name))
        }
        for set in current.sets where !desiredSetNames.contains(set.name) {
            transaction.append(.deleteSet(family, table: table, set: set.name))
        }
        for chain in obsoleteChains {
            transaction.append(.deleteChain(family, table: table, chain: chain.name))
        }
        return transaction
    }
}

extension TableDiff {
    /// The operations that turn every table of `current` into the table of the same family
    /// and name in `desired`, table after table, in one transaction.
    public static func transaction(from current: Ruleset, to desired: Ruleset) -> Transaction {
        var transaction = Transaction()
        for table in desired.tables {
            transaction.append(contentsOf: self.transaction(from: current.table(table.family, table.name), to: table))
        }
        return transaction
    }

    /// Items by name; the first of a name wins.
    private static func byName<Item>(_ items: [Item], _ name: KeyPath<Item, String>) -> [String: Item] {
        Dictionary(items.map { ($0[keyPath: name], $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Whether the table holding `currentSets` and `currentChains` cannot become `desired`
    /// in place: a set changes its key, data, flags, timeout or counter (the kernel cannot), a set has more elements
    /// than its size lets it hold (the kernel cannot grow it), or a base chain changes its hook.
    private static func needsReplacement(_ currentSets: [String: NamedSet], _ currentChains: [String: Chain],
                                         _ desired: Table) -> Bool {
        let setRedeclared = desired.sets.contains { set in
            guard let existing = currentSets[set.name] else { return false }
            return existing.key != set.key || existing.data != set.data || existing.flags != set.flags
                || existing.timeout != set.timeout || existing.counter != set.counter
                || existing.size.map { set.elements.count > $0 } ?? false
        }
        let hookChanged = desired.chains.contains { chain in
            currentChains[chain.name].map { $0.base != chain.base } ?? false
        }
        return setRedeclared || hookChanged
    }

    /// What the kernel holds once `transaction(from: current, to: desired)` is committed:
    /// `desired`, except that sets kept from `current` keep the size they were created with,
    /// and dynamic sets keep the elements the packet path added (less those retired).
    public static func result(from current: Table?, to desired: Table) -> Table {
        guard let current else { return desired }
        let currentSets = byName(current.sets, \.name)
        guard !needsReplacement(currentSets, byName(current.chains, \.name), desired) else { return desired }
        var table = desired
        var retired: [String: [SetElement]]?
        for index in table.sets.indices {
            guard let existing = currentSets[table.sets[index].name] else { continue }
            table.sets[index].size = existing.size
            guard existing.flags.contains(.dynamic) else { continue }
            table.sets[index].elements = existing.elements
            guard !existing.elements.isEmpty else { continue }
            if retired == nil { retired = DerivedKeys.retirements(from: current, to: desired, removed: [:]) }
            if let gone = retired?[existing.name].map({ Set($0.map(\.key)) }) {
                table.sets[index].elements.removeAll { gone.contains($0.key) }
            }
        }
        return table
    }
}

/// Elements to delete and to add so that a set holds exactly the wanted ones.
/// An element whose key stays but whose data or comment changes is deleted and added again.
struct ElementChange {
    var removed: [SetElement] = []
    var added: [SetElement] = []

    init(from current: [SetElement], to desired: [SetElement]) {
        // The compiler lists elements in a stable order, so a change to one service leaves
        // a common prefix and suffix: skip them, and hash only what lies between. (After a
        // read-back the kernel's order is its own and the whole lists are compared.)
        var prefix = 0
        while prefix < current.count, prefix < desired.count, current[prefix] == desired[prefix] { prefix += 1 }
        var suffix = 0
        while suffix < current.count - prefix, suffix < desired.count - prefix,
              current[current.count - 1 - suffix] == desired[desired.count - 1 - suffix] { suffix += 1 }
        self.init(differing: current[prefix..<(current.count - suffix)], desired[prefix..<(desired.count - suffix)])
    }

    private init(differing current: ArraySlice<SetElement>, _ desired: ArraySlice<SetElement>) {
        guard !current.isEmpty || !desired.isEmpty else { return }
        var currentByKey: [[Value]: SetElement] = [:]
        currentByKey.reserveCapacity(current.count)
        for element in current { currentByKey[element.key] = element }
        var desiredKeys = Set<[Value]>()
        desiredKeys.reserveCapacity(desired.count)
        for element in desired {
            desiredKeys.insert(element.key)
            switch currentByKey[element.key] {
            case .none:
                added.append(element)
            case .some(let existing) where existing.data != element.data || existing.comment != element.comment:
                removed.append(SetElement(key: element.key, data: existing.data))
                added.append(element)
            default:
                break
            }
        }
        for element in current where !desiredKeys.contains(element.key) {
            removed.append(element)
        }
    }
}
