import Netlink

/// What one `RulesetSync.sync(to:)` did.
public struct SyncReport: Sendable, Equatable {
    /// Messages committed (0: the kernel already held the desired ruleset).
    public var operations: Int = 0
    public var elementsAdded: Int = 0
    public var elementsRemoved: Int = 0
    /// Whether our tables were read back from the kernel first.
    public var readBack: Bool = false
    /// What the last read-back found that nftproxy did not write (a foreign rule, a set
    /// declared otherwise), with the reason; the sync rewrote those chains or tables.
    public var readBackProblems: [ReadBackProblem] = []
    /// Commits refused because someone else changed the ruleset meanwhile.
    public var retries: Int = 0
    /// The operations committed, in order (their `summary`), for logs and tests.
    public var summaries: [String] = []
    /// What our tables held before the commit (nil when nothing was committed); tables
    /// that did not exist are missing. Conntrack cleanup compares it with the new ruleset.
    public var previous: Ruleset?
}

/// Keeps nftproxy's tables in the kernel equal to a desired ruleset, committing only differences.
///
/// It remembers the ruleset it last committed and the nf_tables generation that commit
/// produced. On first use, or when the generation moved (someone else committed), it
/// reads our tables back from the kernel instead of trusting its memory, so a restart
/// never flushes and a foreign change to our tables is repaired. Every commit carries
/// the generation it was computed against; if another writer got in between, the
/// kernel refuses it and the sync reads back and tries again.
public final class RulesetSync {
    public let client: NftablesClient
    /// How often a commit is retried after a concurrent change.
    public var maximumAttempts = 5

    private struct TableKey: Hashable { let family: TableFamily; let name: String }

    /// What the kernel holds in our tables, as far as we know; nil: read it back.
    private var known: [TableKey: TableReadBack?]?
    private var generation: UInt32?

    /// Runs after a transaction was planned, just before it is committed: where tests let a
    /// concurrent writer in.
    var willCommit: (() -> Void)?

    public init(client: NftablesClient) { self.client = client }

    /// What the kernel holds in one of our tables, as far as this engine knows without
    /// asking (after a sync; nil after `commitChange`, which leaves the model to its caller).
    public func knownTable(_ family: TableFamily, _ name: String) -> Table? {
        (known?[TableKey(family: family, name: name)] ?? nil)?.table
    }

    /// Forgets what was committed: the next sync reads the kernel's state back.
    public func invalidate() { known = nil }

    /// Brings our tables in the kernel to `desired` with the smallest transaction.
    @discardableResult
    public func sync(to desired: Ruleset) throws(NetlinkError) -> SyncReport {
        var report = SyncReport()
        for _ in 0..<maximumAttempts {
            let current = try client.socket.generationID()
            if known == nil || current != generation {
                try readBack(desired)
                report.readBack = true
                report.readBackProblems = (known ?? [:]).values.compactMap { $0 }.flatMap(\.problems)
                    .sorted { $0.description < $1.description }
            }
            let transaction = plan(desired)
            guard !transaction.isEmpty else { return report }
            let previous = Ruleset(tables: desired.tables.compactMap {
                (known?[TableKey(family: $0.family, name: $0.name)] ?? nil)?.table
            })
            do {
                willCommit?()
                try client.commit(transaction, generationID: generation)
            } catch .generationChanged {
                known = nil
                report.retries += 1
                continue
            } catch {
                // Refused: the kernel kept its state, but re-reading is the safe choice.
                known = nil
                throw error
            }
            known = Dictionary(uniqueKeysWithValues: desired.tables.map { table in
                let key = TableKey(family: table.family, name: table.name)
                let current = (known?[key] ?? nil).flatMap { $0.unreadableSets.isEmpty ? $0.table : nil }
                return (key, TableReadBack(table: TableDiff.result(from: current, to: table),
                                           untrustedChains: [], unreadableSets: []))
            })
            generation = try client.socket.generationID()
            report.record(transaction)
            report.previous = previous
            return report
        }
        throw .generationChanged
    }

    /// Commits a transaction its caller planned against the state of our tables that this
    /// engine's last sync or commit left, provided nobody changed the ruleset since: the
    /// incremental path of a caller that keeps its own model of the tables (as
    /// `ServiceProxy` does), which costs what changed and nothing more.
    ///
    /// Returns nil and commits nothing when that state is not current any more (another
    /// writer committed, or nothing was synced yet): the caller then falls back to
    /// `sync(to:)`, which reads our tables back and repairs them.
    public func commitChange(_ transaction: Transaction) throws(NetlinkError) -> SyncReport? {
        guard let expected = generation, try client.socket.generationID() == expected else { return nil }
        var report = SyncReport()
        guard !transaction.isEmpty else { return report }
        do {
            willCommit?()
            try client.commit(transaction, generationID: expected)
        } catch .generationChanged {
            known = nil
            return nil
        } catch {
            known = nil
            throw error
        }
        // Our own picture of the tables is out of date now: a later `sync(to:)` reads back.
        known = nil
        generation = try client.socket.generationID()
        report.record(transaction)
        return report
    }

    private func readBack(_ desired: Ruleset) throws(NetlinkError) {
        let reader = KernelReader(socket: client.socket)
        // Read until the generation is the same before and after: a consistent snapshot.
        for _ in 0..<maximumAttempts {
            let before = try client.socket.generationID()
            var tables: [TableKey: TableReadBack?] = [:]
            for table in desired.tables {
                tables[TableKey(family: table.family, name: table.name)] = try reader.read(table.family, table.name)
            }
            if try client.socket.generationID() == before {
                known = tables
                generation = before
                return
            }
        }
        throw .generationChanged
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
    mutating func record(_ transaction: Transaction) {
        operations = transaction.operations.count
        for operation in transaction.operations {
            switch operation {
            case .addElements(_, _, _, let elements): elementsAdded += elements.count
            case .deleteElements(_, _, _, let elements): elementsRemoved += elements.count
            default: break
            }
            summaries.append(operation.summary)
        }
    }
}
