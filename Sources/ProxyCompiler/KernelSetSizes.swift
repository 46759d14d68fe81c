import Nftables

/// The sizes nftproxy's sets have in the kernel, where they have one. A set cannot hold
/// more elements than its size, and its size cannot change: a set that would outgrow it
/// must be created anew, which a full sync does (`TableDiff`). `ServiceProxy` uses this to
/// send such changes down that path instead of committing them incrementally.
struct KernelSetSizes {
    private var sizes: [TableFamily: [String: Int]] = [:]

    init() {}

    /// The sizes of the sets of `tables`, as the kernel holds them (e.g. after a sync).
    init(_ tables: [Table]) {
        for table in tables {
            sizes[table.family] = Dictionary(table.sets.compactMap { set in set.size.map { (set.name, $0) } },
                                             uniquingKeysWith: { first, _ in first })
        }
    }

    /// Whether `change` would put more elements into a set that exists already than its size allows.
    func overflows(_ change: RulesetChange) -> Bool {
        zip(change.before.tables, change.after.tables).contains { before, after in
            let existing = Set(before.sets.map(\.name))
            return after.sets.contains { set in
                guard existing.contains(set.name), let size = sizes[after.family]?[set.name] else { return false }
                return (change.counts[after.family]?[set.name] ?? 0) > size
            }
        }
    }

    /// After `change` was committed: the sets it created have the size they were declared
    /// with; the sets it deleted are gone.
    mutating func record(_ change: RulesetChange) {
        for (before, after) in zip(change.before.tables, change.after.tables) {
            let existed = Set(before.sets.map(\.name))
            for set in after.sets where !existed.contains(set.name) {
                sizes[after.family, default: [:]][set.name] = set.size
            }
            for name in existed.subtracting(after.sets.map(\.name)) {
                sizes[after.family]?[name] = nil
            }
        }
    }
}
