import Conntrack
import Netlink
import Nftables
import ServiceModel

/// What one `ServiceProxy.apply(_:)` did.
public struct ApplyReport: Sendable {
    /// The ruleset the kernel now holds in nftproxy's tables.
    public var ruleset: Ruleset
    /// Conflicts resolved and features not honoured, from the compiler.
    public var warnings: [String]
    /// The nftables side: operations committed, elements added and removed.
    public var sync: SyncReport
    /// Stale UDP conntrack entries deleted.
    public var flowsDeleted: Int
}

/// Programs one node: compiles the services, brings nftproxy's tables to the result with the
/// smallest transaction, then deletes the UDP conntrack entries the change made stale.
///
/// One instance keeps what it committed, so repeated `apply` calls (a daemon's sync loop)
/// cost what changed; a new instance (a new process) reads the kernel's state back first.
public final class ServiceProxy {
    public let compiler: Compiler
    private let client: NftablesClient
    private let sync: RulesetSync

    /// Talks to the kernel of the current network namespace, or of the named one.
    public init(node: NodeConfig, networkNamespace: String? = nil) throws(NetlinkError) {
        compiler = Compiler(node: node)
        client = try NftablesClient(networkNamespace: networkNamespace)
        sync = RulesetSync(client: client)
    }

    @discardableResult
    public func apply(_ map: ServiceMap) throws(NetlinkError) -> ApplyReport {
        let compilation = compiler.compile(map)
        let report = try sync.sync(to: compilation.ruleset)
        var deleted = 0
        if report.operations > 0 {
            let filters = StaleFlows.filters(from: report.previous, to: compilation.ruleset)
            if !filters.isEmpty {
                deleted = try ConntrackTable(socket: client.socket).delete(matching: filters)
            }
        }
        return ApplyReport(ruleset: compilation.ruleset, warnings: compilation.warnings, sync: report,
                           flowsDeleted: deleted)
    }
}
