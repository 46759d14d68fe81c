import Foundation
import Logging
import Netlink
import ProxyEngine
import ServiceModel
import Synchronization

/// When the sync loop runs.
public struct SyncSettings: Sendable, Equatable {
    /// The least time between the starts of two syncs: changes arriving meanwhile are
    /// coalesced into one sync (kube-proxy's `--min-sync-period`; 0 syncs every change at once).
    public var minSyncPeriod: Duration
    /// How often everything is synced in full, reading the kernel's tables back and
    /// repairing what anyone else changed (kube-proxy's `--sync-period`).
    public var syncPeriod: Duration
    /// The longest wait before a failed sync is retried (retries back off from 100 ms or
    /// the minimum sync period, whichever is longer, doubling up to this).
    public var maximumRetryDelay: Duration

    public init(minSyncPeriod: Duration = .seconds(1), syncPeriod: Duration = .seconds(3600),
                maximumRetryDelay: Duration = .seconds(30)) {
        self.minSyncPeriod = minSyncPeriod
        self.syncPeriod = syncPeriod
        self.maximumRetryDelay = maximumRetryDelay
    }
}

/// Keeps the node's ruleset in step with the cluster: takes the changed services from a
/// `ServiceSnapshotSource` whenever changes arrive (at most once per minimum sync period),
/// hands them to the engine by name so a change costs what changed, syncs everything in
/// full once per sync period or when asked (a topology change of the node), and retries a
/// failed sync with backoff, keeping the last good ruleset in the kernel meanwhile.
///
/// Nothing is programmed before the source has its first complete lists; `health` says
/// unhealthy until the first sync succeeded and whenever a change waits too long.
public actor SyncLoop {
    private let kernel: any ProxyKernel
    /// The engine for the current node configuration; nil until the node is known.
    private var proxy: ServiceProxy?
    private let source: any ServiceSnapshotSource
    private let health: ProxyHealth
    private let metrics: ProxyMetrics?
    private let logger: Logger
    private let settings: SyncSettings
    private let doorbell = Doorbell()
    private let fullSyncRequested = Atomic<Bool>(false)
    private let clock = ContinuousClock()

    private var lastSyncStart: ContinuousClock.Instant?
    private var nextFullSync: ContinuousClock.Instant
    private var retryAt: ContinuousClock.Instant?
    private var failures = 0

    /// What every finished sync reported, for tests and status; the most recent last
    /// (at most the last 100).
    public private(set) var reports: [ApplyReport] = []
    /// How many syncs failed.
    public private(set) var failureCount = 0
    /// Told of each successful sync: the map programmed, the services changed since the
    /// last one (nil: any) and the node (for the health-check node ports).
    private let synced: (@Sendable (_ map: ServiceMap, _ changed: Set<ServiceName>?, _ node: NodeConfig) -> Void)?

    /// A loop programming `kernel` (which it owns from now on) from `source`. With no
    /// `node` yet (its addresses come from the Node object), nothing is programmed until
    /// `setNode(_:)` gives one.
    public init(node: NodeConfig?, kernel: sending any ProxyKernel, source: any ServiceSnapshotSource,
                health: ProxyHealth, metrics: ProxyMetrics? = nil, settings: SyncSettings = SyncSettings(),
                logger: Logger = Logger(label: "nftproxy.sync"),
                synced: (@Sendable (_ map: ServiceMap, _ changed: Set<ServiceName>?, _ node: NodeConfig) -> Void)? = nil) {
        self.kernel = kernel
        self.synced = synced
        self.source = source
        self.health = health
        self.metrics = metrics
        self.settings = settings
        self.logger = logger
        nextFullSync = ContinuousClock().now + settings.syncPeriod
        if let node { proxy = Self.makeProxy(node, kernel: kernel, metrics: metrics) }
    }

    private static func makeProxy(_ node: NodeConfig, kernel: any ProxyKernel, metrics: ProxyMetrics?) -> ServiceProxy {
        let proxy = ServiceProxy(node: node, kernel: kernel)
        if let metrics { proxy.observer = metrics }
        return proxy
    }

    /// The node's configuration changed (its addresses or zone, from the Node object): a
    /// new engine for it adopts what the kernel holds with a full sync, without a flush.
    public func setNode(_ node: NodeConfig) {
        guard proxy?.node != node else { return }
        proxy = Self.makeProxy(node, kernel: kernel, metrics: metrics)
        fullSyncRequested.store(true, ordering: .relaxed)
        health.queuedUpdate()
        doorbell.ring()
    }

    /// The node configuration the loop programs for; nil until known.
    public var node: NodeConfig? { proxy?.node }

    /// Changes arrived at the source: a sync is due (after the minimum sync period).
    public nonisolated func changesArrived() {
        health.queuedUpdate()
        doorbell.ring()
    }

    /// The next sync reads the kernel's tables back and syncs everything (for example after
    /// the node's addresses or zone changed).
    public nonisolated func requestFullSync() {
        fullSyncRequested.store(true, ordering: .relaxed)
        health.queuedUpdate()
        doorbell.ring()
    }

    /// Runs until the task is cancelled.
    public func run() async {
        while !Task.isCancelled {
            let now = clock.now
            let fullDue = now >= nextFullSync || fullSyncRequested.load(ordering: .relaxed)
            let pending = source.hasPendingChanges || retryAt != nil
            var deadline = nextFullSync
            if pending || fullDue {
                let earliest = max(lastSyncStart.map { $0 + settings.minSyncPeriod } ?? now, retryAt ?? now)
                if earliest <= now {
                    if sync(full: fullDue) { continue }
                    // Not ready (no complete lists, or no node yet): wait for a ring.
                } else {
                    deadline = min(deadline, earliest)
                }
            }
            _ = await doorbell.wait(timeout: now.duration(to: deadline))
        }
    }

    /// Syncs once; false when nothing could be synced because the source has no complete
    /// lists yet or the node is not known (the source rings when its first lists are
    /// complete, `setNode` when the node is known).
    private func sync(full: Bool) -> Bool {
        guard let proxy, let snapshot = source.takeSnapshot() else {
            retryAt = nil
            if full { nextFullSync = clock.now + settings.syncPeriod }
            return false
        }
        if full {
            fullSyncRequested.store(false, ordering: .relaxed)
            proxy.invalidate()
        }
        metrics?.changesTaken()
        let start = clock.now
        lastSyncStart = start
        do {
            let report = try proxy.apply(snapshot.map, changed: full ? nil : snapshot.changed)
            // Before /healthz says so: whoever follows the programmed map (health-check node
            // ports, the endpoint metrics' names) has it by the time the node counts as synced.
            synced?(snapshot.map, full ? nil : snapshot.changed, proxy.node)
            health.updated()
            if full || report.fullSyncReason != nil { nextFullSync = clock.now + settings.syncPeriod }
            retryAt = nil
            failures = 0
            let programmed = Date()
            for trigger in snapshot.triggerTimes where trigger <= programmed {
                metrics?.networkProgrammed(latency: .nanoseconds(Int64(programmed.timeIntervalSince(trigger) * 1e9)))
            }
            reports.append(report)
            if reports.count > 100 { reports.removeFirst(reports.count - 100) }
            log(report, services: snapshot.map.services.count)
            // After a full sync, the index for changes is built now rather than by the first change.
            if !report.incremental && !source.hasPendingChanges {
                proxy.prepareForChanges()
                // What the full sync allocated on the way (decoded pages, the compiled
                // ruleset, its encoding) goes back to the kernel, not just to malloc.
                FreeMemory.releaseUnusedPages()
            }
        } catch {
            source.restore(snapshot)
            failures += 1
            failureCount += 1
            let base = max(settings.minSyncPeriod, .milliseconds(100))
            let delay = min(base * (1 << min(failures - 1, 16)), settings.maximumRetryDelay)
            retryAt = clock.now + delay
            logger.error("sync failed; the kernel keeps the last good ruleset", metadata: [
                "error": "\(error)", "attempt": "\(failures)", "retryIn": "\(delay)",
            ])
        }
        return true
    }

    private func log(_ report: ApplyReport, services: Int) {
        var metadata: Logger.Metadata = [
            "path": "\(report.incremental ? "incremental" : "full")",
            "services": "\(services)",
            "operations": "\(report.sync.operations)",
            "elementsAdded": "\(report.sync.elementsAdded)",
            "elementsRemoved": "\(report.sync.elementsRemoved)",
            "durationMs": "\(String(format: "%.2f", Double(report.duration.components.attoseconds) / 1e15 + Double(report.duration.components.seconds) * 1000))",
        ]
        if let reason = report.fullSyncReason { metadata["reason"] = "\(reason)" }
        if !report.changedServices.isEmpty {
            let names = report.changedServices.prefix(5).map(\.description).joined(separator: ",")
                + (report.changedServices.count > 5 ? ",+\(report.changedServices.count - 5)" : "")
            metadata["changed"] = "\(names)"
        }
        if report.flowsDeleted > 0 { metadata["conntrackDeleted"] = "\(report.flowsDeleted)" }
        if report.sync.retries > 0 { metadata["retries"] = "\(report.sync.retries)" }
        logger.info("synced", metadata: metadata)
        for warning in report.warnings { logger.log(warning) }
    }
}
