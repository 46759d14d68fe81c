import Nftables
import ProxyCompiler
import ServiceModel

/// What an apply would do, computed without committing (`ServiceProxy.plan(_:)`).
public struct ApplyPlan: Sendable {
    /// Conflicts resolved and features not honoured, from the compiler.
    public var warnings: [Diagnostic]
    /// The kernel operations the apply would commit, in order, as one transaction.
    public var transaction: Transaction
    /// The frontends that would appear, go, or balance to other endpoints, in key order.
    public var frontendChanges: [FrontendChange]

    /// Whether the apply would change nothing.
    public var isEmpty: Bool { transaction.isEmpty }
}
