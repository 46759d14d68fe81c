import Conntrack
import Netlink
import Nftables
import ProxyCompiler
import ServiceModel

/// Programs one node: compiles the services, brings nftproxy's tables to the result with the
/// smallest transaction, then deletes the UDP conntrack entries the change made stale.
///
/// The first `apply` (and any after someone else changed the ruleset) compiles the whole
/// map and lets `RulesetSync` diff it against what the kernel holds, reading it back first.
/// Later ones, from the same instance (a daemon's sync loop), compare the new map with the
/// previous one and compile and commit only the services that changed (`CompiledServices`,
/// `RulesetSync.commitChange`), so a change costs what changed at any cluster size.
///
/// It talks to the kernel only through a `ProxyKernel`: `NetlinkKernel` on a node, an
/// in-memory kernel in tests. Every apply is reported to the `observer`, if any.
public final class ServiceProxy {
    public let node: NodeConfig
    /// Told about every apply (held weakly).
    public weak var observer: (any ServiceProxyObserver)?

    private let compiler: Compiler
    private let kernel: any ProxyKernel
    private let sync: RulesetSync

    /// What the kernel holds after the last apply: the map, compiled per service on first need.
    private enum Committed {
        case map(ServiceMap)
        case compiled(CompiledServices)
    }
    private var committed: Committed?
    /// Why the next apply syncs in full, while `committed` is nil.
    private var fullSyncReason = ApplyReport.FullSyncReason.firstApply
    /// The sizes of our sets in the kernel after the last apply.
    private var setSizes = KernelSetSizes()

    /// Programs the node through `kernel`.
    public init(node: NodeConfig, kernel: any ProxyKernel) {
        self.node = node
        self.kernel = kernel
        compiler = Compiler(node: node)
        sync = RulesetSync(kernel: kernel)
    }

    /// Talks to the kernel of the current network namespace, or of the named one.
    public convenience init(node: NodeConfig, networkNamespace: String? = nil) throws(NetlinkError) {
        self.init(node: node, kernel: try NetlinkKernel(networkNamespace: networkNamespace))
    }

    /// Makes the next apply read our tables back and sync the whole map (a periodic full
    /// resync of a daemon, or after something outside nf_tables' generation changed).
    public func invalidate() {
        committed = nil
        fullSyncReason = .requested
        sync.invalidate()
    }

    /// Builds the per-service index incremental applies work on, when the last apply was a
    /// full sync (otherwise the next apply builds it first, which at 10,000 services takes
    /// about as long as compiling everything). A daemon calls this while it has nothing else
    /// to do after a full sync, so that the first change afterwards does not wait for it.
    public func prepareForChanges() {
        if case .map(let map)? = committed { committed = .compiled(CompiledServices(node: node, map: map)) }
    }

    /// Brings the node's tables to `map`.
    ///
    /// - Parameter changed: the names of the services that may differ from the map of the
    ///   previous apply, when the caller knows them (a daemon does, from its watch events):
    ///   the others are not compared, so an incremental apply costs what changed whatever the
    ///   number of services. A service left out although it changed is not updated until a
    ///   full sync (the first apply of a new instance). nil: compare every service.
    ///
    /// - Throws: ``ApplyError``: the kernel's error, naming the Services whose elements the
    ///   refused operation carried. Nothing of the failed commit is applied.
    @discardableResult
    public func apply(_ map: ServiceMap, changed: Set<ServiceName>? = nil) throws(ApplyError) -> ApplyReport {
        let clock = ContinuousClock()
        let start = clock.now
        do {
            var report = try applyIncrementallyOrInFull(map, changed: changed)
            report.duration = start.duration(to: clock.now)
            observer?.serviceProxy(self, didApply: report)
            return report
        } catch {
            let blamed = ApplyError.blaming(error, in: sync.lastAttempt, map: map)
            observer?.serviceProxy(self, didFail: blamed, after: start.duration(to: clock.now))
            throw blamed
        }
    }

    /// What applying `map` would change, without committing anything: the kernel
    /// operations a full sync would commit now (our tables are read back, as a new process's
    /// first apply does), and the frontends they add, remove or re-balance.
    public func plan(_ map: ServiceMap) throws(NetlinkError) -> ApplyPlan {
        let compilation = compiler.compile(map)
        let (transaction, current) = try sync.preview(compilation.ruleset)
        return ApplyPlan(warnings: compilation.warnings, transaction: transaction,
                         frontendChanges: FrontendChange.changes(from: current, to: compilation.ruleset))
    }

    private func applyIncrementallyOrInFull(_ map: ServiceMap, changed: Set<ServiceName>?) throws(NetlinkError)
        -> ApplyReport {
        let reason: ApplyReport.FullSyncReason
        switch try applyIncrementally(map, changed: changed) {
        case .applied(let report): return report
        case .fallBack(let why): reason = why
        }
        committed = nil
        fullSyncReason = .previousApplyFailed  // until this one succeeds
        let compilation = compiler.compile(map)
        let report = try sync.sync(to: compilation.ruleset)
        committed = .map(map)
        setSizes = KernelSetSizes(compilation.ruleset.tables.compactMap { sync.knownTable($0.family, $0.name) })
        let deleted = report.operations > 0 ? try deleteStaleFlows(from: report.previous, to: compilation.ruleset) : 0
        return ApplyReport(path: .full(reason), warnings: compilation.warnings, sync: report, changedServices: [],
                           flowsDeleted: deleted)
    }

    private enum Attempt {
        case applied(ApplyReport)
        case fallBack(ApplyReport.FullSyncReason)
    }

    /// Compiles and commits only what changed since the last apply, unless the kernel is
    /// not in the state that apply left (or there was none).
    private func applyIncrementally(_ map: ServiceMap, changed: Set<ServiceName>?) throws(NetlinkError) -> Attempt {
        var compiled: CompiledServices
        switch committed {
        case nil: return .fallBack(fullSyncReason)
        case .map(let previous)?: compiled = CompiledServices(node: node, map: previous)
        case .compiled(let state)?: compiled = state
        }
        committed = nil  // until the outcome is known
        fullSyncReason = .previousApplyFailed
        let change = compiled.apply(map, changed: changed)
        if let overflow = setSizes.overflow(change) { return .fallBack(.setOverflow(overflow.family, set: overflow.set)) }
        let report: SyncReport
        switch try sync.commitChange(TableDiff.transaction(from: change.before, to: change.after)) {
        case .committed(let committedReport): report = committedReport
        case .notCurrent: return .fallBack(.generationMoved)
        case .overtaken: return .fallBack(.commitOvertaken)
        }
        committed = .compiled(compiled)
        setSizes.record(change)
        let deleted = report.operations > 0 ? try deleteStaleFlows(from: change.before, to: change.after) : 0
        return .applied(ApplyReport(path: .incremental, warnings: change.warnings, sync: report,
                                    changedServices: change.services, flowsDeleted: deleted))
    }

    private func deleteStaleFlows(from previous: Ruleset?, to current: Ruleset) throws(NetlinkError) -> Int {
        let filters = StaleFlows.filters(from: previous, to: current)
        return filters.isEmpty ? 0 : try kernel.deleteConntrackFlows(matching: filters)
    }
}
