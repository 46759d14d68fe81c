import Conntrack
import Netlink
import Nftables
import ServiceModel

/// What one `ServiceProxy.apply(_:)` did.
public struct ApplyReport: Sendable {
    /// Conflicts resolved and features not honoured, from the compiler: for the whole map
    /// after a full sync, for the changed services after an incremental one.
    public var warnings: [String]
    /// The nftables side: operations committed, elements added and removed.
    public var sync: SyncReport
    /// Whether only the changed services were compiled and committed (the kernel was still
    /// in the state of this proxy's previous apply), rather than the whole map synced.
    public var incremental: Bool
    /// Services that changed since the previous apply (incremental applies only).
    public var changedServices: [ServiceName]
    /// Stale UDP conntrack entries deleted.
    public var flowsDeleted: Int
}

/// Programs one node: compiles the services, brings nftproxy's tables to the result with the
/// smallest transaction, then deletes the UDP conntrack entries the change made stale.
///
/// The first `apply` (and any after someone else changed the ruleset) compiles the whole
/// map and lets `RulesetSync` diff it against what the kernel holds, reading it back first.
/// Later ones, from the same instance (a daemon's sync loop), compare the new map with the
/// previous one and compile and commit only the services that changed (`CompiledServices`,
/// `RulesetSync.commitChange`), so a change costs what changed at any cluster size.
public final class ServiceProxy {
    public let compiler: Compiler
    /// The netlink connection to the node's kernel.
    public let client: NftablesClient
    private let sync: RulesetSync

    /// What the kernel holds after the last apply: the map, compiled per service on first need.
    private enum Committed {
        case map(ServiceMap)
        case compiled(CompiledServices)
    }
    private var committed: Committed?
    /// The sizes of our sets in the kernel after the last apply.
    private var setSizes = KernelSetSizes()

    /// Talks to the kernel of the current network namespace, or of the named one.
    public init(node: NodeConfig, networkNamespace: String? = nil) throws(NetlinkError) {
        compiler = Compiler(node: node)
        client = try NftablesClient(networkNamespace: networkNamespace)
        sync = RulesetSync(client: client)
    }

    /// Brings the node's tables to `map`.
    ///
    /// - Parameter changed: the names of the services that may differ from the map of the
    ///   previous apply, when the caller knows them (a daemon does, from its watch events):
    ///   the others are not compared, so an incremental apply costs what changed whatever the
    ///   number of services. A service left out although it changed is not updated until a
    ///   full sync (the first apply of a new instance). nil: compare every service.
    @discardableResult
    public func apply(_ map: ServiceMap, changed: Set<ServiceName>? = nil) throws(NetlinkError) -> ApplyReport {
        if let report = try applyIncrementally(map, changed: changed) { return report }
        committed = nil
        let compilation = compiler.compile(map)
        let report = try sync.sync(to: compilation.ruleset)
        committed = .map(map)
        setSizes = KernelSetSizes(compilation.ruleset.tables.compactMap { sync.knownTable($0.family, $0.name) })
        let deleted = report.operations > 0 ? try deleteStaleFlows(from: report.previous, to: compilation.ruleset) : 0
        return ApplyReport(warnings: compilation.warnings, sync: report, incremental: false, changedServices: [],
                           flowsDeleted: deleted)
    }

    /// Compiles and commits only what changed since the last apply; nil when the kernel is
    /// not in the state that apply left (or there was none).
    private func applyIncrementally(_ map: ServiceMap, changed: Set<ServiceName>?) throws(NetlinkError) -> ApplyReport? {
        var compiled: CompiledServices
        switch committed {
        case nil: return nil
        case .map(let previous)?: compiled = CompiledServices(node: compiler.node, map: previous)
        case .compiled(let state)?: compiled = state
        }
        committed = nil  // until the outcome is known
        let change = compiled.apply(map, changed: changed)
        guard !setSizes.overflows(change) else { return nil }
        guard let report = try sync.commitChange(TableDiff.transaction(from: change.before, to: change.after)) else {
            return nil
        }
        committed = .compiled(compiled)
        setSizes.record(change)
        let deleted = report.operations > 0 ? try deleteStaleFlows(from: change.before, to: change.after) : 0
        return ApplyReport(warnings: change.warnings, sync: report, incremental: true,
                           changedServices: change.services, flowsDeleted: deleted)
    }

    private func deleteStaleFlows(from previous: Ruleset?, to current: Ruleset) throws(NetlinkError) -> Int {
        let filters = StaleFlows.filters(from: previous, to: current)
        return filters.isEmpty ? 0 : try ConntrackTable(socket: client.socket).delete(matching: filters)
    }
}
