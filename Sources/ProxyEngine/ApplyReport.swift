import Netlink
import Nftables
import ServiceModel

/// What one `ServiceProxy.apply(_:changed:)` did, in typed fields: what a log line, a
/// metrics exporter or a test reads.
public struct ApplyReport: Sendable {
    /// How the kernel was brought to the new map.
    public enum Path: Sendable, Equatable {
        /// Only the changed services were compiled and committed.
        case incremental
        /// The whole map was compiled and synced against our tables (read back first when
        /// the engine did not know them), for this reason.
        case full(FullSyncReason)
    }

    /// Why an apply compiled and synced the whole map instead of the changed services.
    public enum FullSyncReason: Sendable, Equatable {
        /// This proxy has not applied anything yet (a new process).
        case firstApply
        /// Its caller asked for it (`ServiceProxy.invalidate()`).
        case requested
        /// The previous apply failed, so the kernel's state is not known.
        case previousApplyFailed
        /// Someone else committed to nf_tables since this proxy's last commit.
        case generationMoved
        /// Someone else committed between this proxy's check and its commit: the kernel
        /// refused the incremental commit as stale and applied none of it.
        case commitOvertaken
        /// The change would put more elements into this set than its declared size:
        /// the table is re-created with larger sets.
        case setOverflow(TableFamily, set: String)
    }

    public var path: Path
    /// Conflicts resolved and features not honoured, from the compiler: for the whole map
    /// after a full sync, for the changed services after an incremental one.
    public var warnings: [Diagnostic]
    /// The nftables side: operations committed, elements added and removed, read-back, retries.
    public var sync: SyncReport
    /// Services that changed since the previous apply (incremental applies only).
    public var changedServices: [ServiceName]
    /// Stale UDP conntrack entries deleted.
    public var flowsDeleted: Int
    /// Time from the call to the return, compile and conntrack cleanup included.
    public var duration: Duration = .zero

    /// Whether only the changed services were compiled and committed.
    public var incremental: Bool { path == .incremental }

    /// Why the whole map was synced; nil for an incremental apply.
    public var fullSyncReason: FullSyncReason? {
        if case .full(let reason) = path { return reason }
        return nil
    }
}

/// Told about every apply of a `ServiceProxy`: where a daemon's log and a metrics exporter plug in.
public protocol ServiceProxyObserver: AnyObject {
    /// An apply finished; `report` says what it did.
    func serviceProxy(_ proxy: ServiceProxy, didApply report: ApplyReport)
    /// An apply failed after `duration`; the next one syncs in full.
    func serviceProxy(_ proxy: ServiceProxy, didFail error: ApplyError, after duration: Duration)
}
