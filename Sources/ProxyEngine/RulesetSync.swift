import Netlink
import Nftables

/// What one `RulesetSync.sync(to:)` or `commitChange(_:)` did.
public struct SyncReport: Sendable, Equatable {
    /// The operations committed, in order (empty: the kernel already held the desired ruleset).
    public var transaction = Transaction()
    public var elementsAdded: Int = 0
    public var elementsRemoved: Int = 0
    /// Elements of dynamic sets retired because what they counted is gone (the kernel
    /// deleted those the packet path had created; the others were not there).
    public var elementsRetired: Int = 0
    /// Whether our tables were read back from the kernel first.
    public var readBack: Bool = false
    /// What the last read-back found that nftproxy did not write (a foreign rule, a set
    /// declared otherwise), with the reason; the sync rewrote those chains or tables.
    public var readBackProblems: [ReadBackProblem] = []
    /// Element keys the last read-back looked up in the kernel.
    public var keysLookedUp = 0
    /// Frontends whose backends elements the last read-back took on trust (their digest in
    /// the kernel matched, under a current generation stamp; docs/ruleset.md); nil when it
    /// read everything.
    public var trustedFrontends: Int?
    /// Commits refused because someone else changed the ruleset meanwhile.
    public var retries: Int = 0
    /// What our tables held before the commit (nil when nothing was committed); tables
    /// that did not exist are missing. Conntrack cleanup compares it with the new ruleset.
    public var previous: Ruleset?

    public init() {}

    /// Messages committed.
    public var operations: Int { transaction.operations.count }
    /// The operations committed, in nft words (`Operation.summary`), for logs and tests.
    public var summaries: [String] { transaction.operations.map(\.summary) }
}

/// Keeps nftproxy's tables in the kernel equal to a desired ruleset, committing only differences.
///
/// It remembers the ruleset it last committed and the nf_tables generation that commit
/// produced. On first use, or when the generation moved (someone else committed), it
/// reads our tables back from the kernel instead of trusting its memory, so a restart
/// never flushes and a foreign change to our tables is repaired. Every commit carries
/// the generation it was computed against; if another writer got in between, the
/// kernel refuses it and the sync reads back and tries again.
///
/// Every commit also writes, in the same batch, the generation it produces into each
/// table's generation stamp (``GenerationStamp``). A read-back that finds the stamp equal to
/// the current generation (nobody committed since an nftproxy commit) takes the backends
/// elements of frontends whose digest matches the desired table's from the desired table
/// (``TrustedReadBack``), and looks up only the others. After `invalidate()` of an engine
/// that has synced (a periodic full resync) and after a refused commit, it reads everything.
public final class RulesetSync {
    public let kernel: any ProxyKernel
    /// How often a commit is retried after a concurrent change.
    public var maximumAttempts = 5

    private struct TableKey: Hashable { let family: TableFamily; let name: String }

    /// What the kernel holds in our tables, as far as we know; nil: read it back.
    private var known: [TableKey: TableReadBack?]?
    /// The transaction of the latest commit attempt (for naming what a refusal concerns).
    public private(set) var lastAttempt: Transaction?
    /// The generation our last commit or read-back left; nil: nothing synced yet.
    public private(set) var generation: UInt32?
    /// Whether the next read-back dumps every set (`ProxyKernel.readTableCompletely`):
    /// after the kernel refused a commit. A read-back normally looks the backends maps'
    /// elements up by the keys the verdict maps imply and so misses elements no packet can
    /// reach; if such elements filled a map to its size, the kernel refuses every commit
    /// that adds to it (ENFILE) until a complete read-back plans their deletion.
    public private(set) var readsEveryElementNext = false
    /// Whether the next read-back may trust a current generation stamp and the digests.
    public private(set) var trustsDigestsNext = true
    /// What each table's stamp set holds in the kernel, as far as known (none: no stamp set).
    private var stamps: [TableKey: [SetElement]] = [:]
    /// The tables of the last sync: every commit stamps each of them.
    private var stampedTables: [TableKey] = []

    public init(kernel: any ProxyKernel) { self.kernel = kernel }

    /// What the kernel holds in one of our tables, as far as this engine knows without
    /// asking (after a sync; nil after `commitChange`, which leaves the model to its caller).
    public func knownTable(_ family: TableFamily, _ name: String) -> Table? {
        (known?[TableKey(family: family, name: name)] ?? nil)?.table
    }

    /// Forgets what was committed: the next sync reads the kernel's state back, all of it
    /// once this engine has synced (a requested full resync exists to repair what others did).
    public func invalidate() {
        known = nil
        if generation != nil { trustsDigestsNext = false }
    }

    /// Whether the kernel is still in the state this engine's last sync or commit left
    /// (nobody committed since), so that a change planned against that state may be committed.
    public func isCurrent() throws(NetlinkError) -> Bool {
        guard let generation else { return false }
        return try kernel.generation() == generation
    }

    /// Brings our tables in the kernel to `desired` with the smallest transaction.
    @discardableResult
    public func sync(to desired: Ruleset) throws(NetlinkError) -> SyncReport {
        var report = SyncReport()
        // Later commits (`commitChange`) stamp these tables, whether or not this sync commits.
        stampedTables = desired.tables.map { TableKey(family: $0.family, name: $0.name) }
        for _ in 0..<maximumAttempts {
            let current = try kernel.generation()
            if known == nil || current != generation {
                try readBack(desired)
                report.readBack = true
                let readBacks = (known ?? [:]).values.compactMap { $0 }
                report.readBackProblems = readBacks.flatMap(\.problems).sorted { $0.description < $1.description }
                report.keysLookedUp = readBacks.reduce(0) { $0 + $1.keysLookedUp }
                let trusted = readBacks.compactMap(\.trustedFrontends)
                report.trustedFrontends = trusted.isEmpty ? nil : trusted.reduce(0, +)
            }
            let stampedDesired = stamped(desired)
            var transaction = plan(stampedDesired)
            guard !transaction.isEmpty else { return report }
            // Set by the read-back above whenever it was nil.
            let expected = generation ?? current
            let next = GenerationStamp.generation(after: expected)
            transaction.append(contentsOf: restamp(desired.tables.map { TableKey(family: $0.family, name: $0.name) },
                                                   to: next))
            let previous = Ruleset(tables: desired.tables.compactMap {
                (known?[TableKey(family: $0.family, name: $0.name)] ?? nil)?.table
            })
            lastAttempt = transaction
            do {
                try kernel.commit(transaction, expectedGeneration: expected)
            } catch .generationChanged {
                known = nil
                report.retries += 1
                continue
            } catch {
                // Refused: the kernel kept its state, but re-reading (all of it) is the safe choice.
                known = nil
                readsEveryElementNext = true
                throw error
            }
            let stamp = [GenerationStamp.element(next)]
            known = Dictionary(uniqueKeysWithValues: desired.tables.map { table in
                let key = TableKey(family: table.family, name: table.name)
                let current = (known?[key] ?? nil).flatMap { $0.unreadableSets.isEmpty ? $0.table : nil }
                return (key, TableReadBack(TableDiff.result(from: current, to: GenerationStamp.stamped(table, elements: stamp))))
            })
            for key in stampedTables { stamps[key] = stamp }
            generation = try kernel.generation()
            report.record(transaction)
            report.previous = previous
            return report
        }
        throw .generationChanged
    }

    /// What `sync(to:)` would commit now, without committing: reads our tables back (a
    /// consistent snapshot, as a first sync does) and plans the transaction against them,
    /// the generation stamps' update included.
    ///
    /// - Returns: the transaction, and the tables as the kernel holds them.
    public func preview(_ desired: Ruleset) throws(NetlinkError) -> (transaction: Transaction, current: Ruleset) {
        try readBack(desired)
        let current = Ruleset(tables: desired.tables.compactMap {
            (known?[TableKey(family: $0.family, name: $0.name)] ?? nil)?.table
        })
        var transaction = plan(stamped(desired))
        if !transaction.isEmpty, let generation {
            transaction.append(contentsOf: restamp(desired.tables.map { TableKey(family: $0.family, name: $0.name) },
                                                   to: GenerationStamp.generation(after: generation)))
        }
        return (transaction, current)
    }

    /// What became of a change committed with `commitChange(_:)`.
    public enum ChangeOutcome: Sendable {
        /// Committed (or nothing to commit).
        case committed(SyncReport)
        /// Not committed: nothing was synced yet, or someone else committed since.
        case notCurrent
        /// Not committed: someone else committed between the check and the commit, and the
        /// kernel refused the stale batch as a whole.
        case overtaken
    }

    /// Commits a transaction its caller planned against the state of our tables that this
    /// engine's last sync or commit left, provided nobody changed the ruleset since: the
    /// incremental path of a caller that keeps its own model of the tables (as
    /// `ServiceProxy` does), which costs what changed and nothing more.
    ///
    /// When that state is not current any more (another writer committed, or nothing was
    /// synced yet) nothing is committed: the caller then falls back to `sync(to:)`, which
    /// reads our tables back and repairs them.
    public func commitChange(_ transaction: Transaction) throws(NetlinkError) -> ChangeOutcome {
        guard let expected = generation, try kernel.generation() == expected else { return .notCurrent }
        var report = SyncReport()
        guard !transaction.isEmpty else { return .committed(report) }
        let next = GenerationStamp.generation(after: expected)
        var transaction = transaction
        transaction.append(contentsOf: restamp(stampedTables, to: next))
        lastAttempt = transaction
        do {
            try kernel.commit(transaction, expectedGeneration: expected)
        } catch .generationChanged {
            known = nil
            return .overtaken
        } catch {
            known = nil
            readsEveryElementNext = true
            throw error
        }
        // Our own picture of the tables is out of date now: a later `sync(to:)` reads back.
        known = nil
        for key in stampedTables { stamps[key] = [GenerationStamp.element(next)] }
        generation = try kernel.generation()
        report.record(transaction)
        return .committed(report)
    }

    private func readBack(_ desired: Ruleset) throws(NetlinkError) {
        // Read until the generation is the same before and after: a consistent snapshot.
        for _ in 0..<maximumAttempts {
            let before = try kernel.generation()
            var tables: [TableKey: TableReadBack?] = [:]
            for table in desired.tables {
                let key = TableKey(family: table.family, name: table.name)
                if readsEveryElementNext {
                    tables[key] = try kernel.readTableCompletely(table.family, table.name)
                } else if trustsDigestsNext {
                    tables[key] = try kernel.readTable(table.family, table.name,
                                                       trusting: ReadBackTrust(desired: table, generation: before))
                } else {
                    tables[key] = try kernel.readTable(table.family, table.name)
                }
            }
            if try kernel.generation() == before {
                known = tables
                generation = before
                readsEveryElementNext = false
                trustsDigestsNext = true
                stamps = [:]
                for (key, readBack) in tables {
                    if let readBack, let elements = GenerationStamp.elements(in: readBack.table) { stamps[key] = elements }
                }
                return
            }
        }
        throw .generationChanged
    }

    /// `desired` with each table's stamp set holding what the kernel's holds (so that
    /// planning leaves it alone, and declares it where it is missing).
    private func stamped(_ desired: Ruleset) -> Ruleset {
        Ruleset(tables: desired.tables.map { table in
            GenerationStamp.stamped(table, elements: stamps[TableKey(family: table.family, name: table.name)] ?? [])
        })
    }

    /// The operations that move the stamps of `tables` to `generation`, to end a transaction with.
    private func restamp(_ tables: [TableKey], to generation: UInt32) -> Transaction {
        var transaction = Transaction()
        for key in tables {
            transaction.append(contentsOf: GenerationStamp.restamp(family: key.family, table: key.name,
                                                                   from: stamps[key] ?? [], to: generation))
        }
        return transaction
    }

    private func plan(_ desired: Ruleset) -> Transaction {
        var transaction = Transaction()
        for table in desired.tables {
            let current = known?[TableKey(family: table.family, name: table.name)] ?? nil
            if let current, !current.unreadableSets.isEmpty {
                transaction.replace(table)
                continue
            }
            transaction.append(contentsOf: TableDiff.transaction(from: current?.table, to: table,
                                                                 untrusted: current?.untrustedChains ?? []))
        }
        return transaction
    }
}

extension SyncReport {
    mutating func record(_ committed: Transaction) {
        transaction = committed
        for operation in committed.operations {
            switch operation {
            // The stamp is bookkeeping, not the tables' contents.
            case .addElements(_, _, let set, _) where set.name == GenerationStamp.setName: break
            case .deleteElements(_, _, let set, _) where set.name == GenerationStamp.setName: break
            case .addElements(_, _, _, let elements): elementsAdded += elements.count
            case .deleteElements(_, _, _, let elements): elementsRemoved += elements.count
            case .destroyElements(_, _, _, let elements): elementsRetired += elements.count
            default: break
            }
        }
    }
}
