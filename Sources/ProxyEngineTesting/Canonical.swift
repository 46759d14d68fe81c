import Nftables

extension Table {
    /// The table in an order-free form, for comparing two kernels' states: sets and chains by
    /// name, elements by key (the kernel lists them in hash order), rules kept in their order.
    ///
    /// - Parameter keepingSizes: false drops the declared set sizes, which a kernel keeps from
    ///   the set's creation while a fresh compile declares them anew.
    public func canonical(keepingSizes: Bool = true) -> Table {
        var copy = self
        copy.sets = sets.map { set in
            var set = set
            set.elements.sort { $0.key.lexicographicallyPrecedes($1.key) }
            if !keepingSizes { set.size = nil }
            return set
        }.sorted { $0.name < $1.name }
        copy.chains.sort { $0.name < $1.name }
        return copy
    }
}

extension Ruleset {
    /// Every table `canonical`, tables ordered by family and name.
    public func canonical(keepingSizes: Bool = true) -> Ruleset {
        Ruleset(tables: tables.map { $0.canonical(keepingSizes: keepingSizes) }
            .sorted { ($0.family.rawValue, $0.name) < ($1.family.rawValue, $1.name) })
    }
}
