import Conntrack
import Netlink
import Nftables
import ProxyEngine
import ServiceModel

/// A transactional in-memory kernel for tests: a `ProxyKernel` with nf_tables' rules and
/// none of its privileges, so the engine's decisions can be tested without root.
///
/// A commit applies its transaction all-or-nothing to `tables` (see `FakeTables` for what
/// is refused, with which errno), is refused as stale when it carries a generation that is
/// not the current one, and moves the generation. A test plays the other writers and the
/// failures: `foreignCommit(_:)` and `foreignCommitElsewhere()` change the state and move
/// the generation as another process would; `beforeNextCommit(_:)` lets such a writer in
/// between the engine's planning and its commit; `failNextCommit(with:)` refuses the next
/// commit. Conntrack entries are seeded into `flows` and removed by the engine's deletes.
/// The kernel tests check that the real kernel ends in the same state from the same
/// transactions (`FakeKernelConformanceTests`).
public final class FakeKernel: ProxyKernel {
    /// Our tables and anyone else's, as the kernel would hold them.
    public private(set) var tables = FakeTables()
    /// The ruleset generation; it starts at 1 and moves on every applied commit.
    public private(set) var currentGeneration: UInt32 = 1
    /// The conntrack table: seed it; `deleteConntrackFlows` removes what matches.
    public var flows: [ConntrackFlow] = []
    /// The transactions committed through the `ProxyKernel` interface and applied, in order.
    public private(set) var commits: [Transaction] = []
    /// How many tables were read back through the `ProxyKernel` interface.
    public private(set) var tablesRead = 0
    /// How many of those were complete reads (`readTableCompletely`; an in-memory kernel's
    /// reads are always complete, but the engine asks for one only after a refusal).
    public private(set) var tablesReadCompletely = 0
    /// How many reads took the trusted path (a current generation stamp; `readTable(_:_:trusting:)`).
    public private(set) var tablesReadTrusted = 0
    /// Derived-map keys the trusted reads looked up (as `KernelReader` would ask the kernel).
    public private(set) var keysLookedUp = 0
    /// Chains whose rules the read-back reports as not understood (as `KernelReader` does
    /// for a rule nftproxy did not write), in every table that has them.
    public var untrustedChains: Set<String> = []
    /// Sets whose declaration the read-back reports as not understood.
    public var unreadableSets: Set<String> = []

    private var pendingFailure: NetlinkError?
    private var pendingWriter: ((FakeKernel) throws -> Void)?

    public init() {}

    // MARK: ProxyKernel

    public func generation() throws(NetlinkError) -> UInt32 { currentGeneration }

    public func commit(_ transaction: Transaction, expectedGeneration: UInt32?) throws(NetlinkError) {
        guard !transaction.isEmpty else { return }
        if let writer = pendingWriter {
            pendingWriter = nil
            do { try writer(self) } catch { throw .handler(error) }
        }
        if let failure = pendingFailure {
            pendingFailure = nil
            throw failure
        }
        if let expectedGeneration, expectedGeneration != currentGeneration { throw .generationChanged }
        try tables.apply(transaction)
        moveGeneration()
        commits.append(transaction)
    }

    public func readTable(_ family: TableFamily, _ name: String) throws(NetlinkError) -> TableReadBack? {
        tablesRead += 1
        guard let table = tables.table(family, name) else { return nil }
        return TableReadBack(table,
                             untrustedChains: untrustedChains.intersection(table.chains.map(\.name)),
                             unreadableSets: unreadableSets.intersection(table.sets.map(\.name)))
    }

    /// Reads as `KernelReader` does with a trust: when the table's stamp is the current
    /// generation, the derived maps' elements of frontends with matching digests come from
    /// `trust.desired` and only the other keys are looked up in this kernel's table.
    public func readTable(_ family: TableFamily, _ name: String, trusting trust: ReadBackTrust) throws(NetlinkError)
        -> TableReadBack? {
        guard var readBack = try readTable(family, name) else { return nil }
        guard readBack.untrustedChains.isEmpty, readBack.unreadableSets.isEmpty else { return readBack }
        let held = readBack.table
        let derived = DerivedKeys(held)
        guard let trusted = TrustedReadBack(kernel: held, derived: derived, desired: trust.desired,
                                            generation: trust.generation) else { return readBack }
        tablesReadTrusted += 1
        for index in readBack.table.sets.indices where derived.maps.contains(held.sets[index].name) {
            let map = held.sets[index]
            guard let keys = trusted.keysToLookUp(of: map.name, in: held, derived: derived) else { continue }
            keysLookedUp += keys.count
            readBack.keysLookedUp += keys.count
            let byKey = Dictionary(map.elements.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
            readBack.table.sets[index].elements = trusted.elements(of: map.name, lookedUp: keys.compactMap { byKey[$0] })
        }
        readBack.trustedFrontends = trusted.trustedFrontends.count
        return readBack
    }

    public func readTableCompletely(_ family: TableFamily, _ name: String) throws(NetlinkError) -> TableReadBack? {
        tablesReadCompletely += 1
        return try readTable(family, name)
    }

    public func conntrackFlows(family: IPFamily) throws(NetlinkError) -> [ConntrackFlow] {
        flows.filter { $0.family == family }
    }

    public func deleteConntrackFlows(matching filters: [ConntrackFilter]) throws(NetlinkError) -> Int {
        let before = flows.count
        flows.removeAll { flow in filters.contains { $0.matches(flow) } }
        return before - flows.count
    }

    // MARK: What a test does

    /// Another process commits `transaction` (all or nothing, no generation check).
    public func foreignCommit(_ transaction: Transaction) throws(NetlinkError) {
        try tables.apply(transaction)
        moveGeneration()
    }

    /// Another process commits to a table of its own: only the generation moves.
    public func foreignCommitElsewhere() {
        moveGeneration()
    }

    /// As the kernel moves it: by one, skipping 0.
    private func moveGeneration() {
        currentGeneration = GenerationStamp.generation(after: currentGeneration)
    }

    /// Runs `writer` once, at the start of the next non-empty commit, before the generation
    /// is checked: another writer that lands between the engine's planning and its commit.
    /// Should the writer throw, the commit throws `NetlinkError.handler` with its error.
    public func beforeNextCommit(_ writer: @escaping (FakeKernel) throws -> Void) {
        pendingWriter = writer
    }

    /// Refuses the next non-empty commit with `error`, applying none of it.
    public func failNextCommit(with error: NetlinkError) {
        pendingFailure = error
    }
}
