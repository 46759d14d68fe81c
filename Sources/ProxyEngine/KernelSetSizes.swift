import Nftables
import ProxyCompiler

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

    /// The first set that exists already and to which `change` would give more elements
    /// than its size allows; nil when every set keeps within its size.
    func overflow(_ change: RulesetChange) -> (family: TableFamily, set: String)? {
        for (before, after) in zip(change.before.tables, change.after.tables) {
            let existing = Set(before.sets.map(\.name))
            for set in after.sets where existing.contains(set.name) {
                guard let size = sizes[after.family]?[set.name] else { continue }
                if (change.counts[after.family]?[set.name] ?? 0) > size { return (after.family, set.name) }
            }
        }
        return nil
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
