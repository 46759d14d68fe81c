import Foundation
import Metrics
import Netlink
import Prometheus
import ProxyEngine

/// The daemon's Prometheus metrics: kube-proxy's names and labels where the meaning is the
/// same (so existing dashboards and alerts keep working), nftproxy's own under `nftproxy_`.
///
/// Metrics are made through swift-metrics with a `PrometheusMetricsFactory` of this
/// instance's own registry, so several instances (tests) never share values; `render()`
/// is the text `/metrics` serves. It observes a `ServiceProxy` for the sync metrics.
public final class ProxyMetrics: ServiceProxyObserver, Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    /// Metric names, as `/metrics` shows them.
    public enum Name {
        public static let syncDuration = "kubeproxy_sync_proxy_rules_duration_seconds"
        public static let fullSyncDuration = "kubeproxy_sync_full_proxy_rules_duration_seconds"
        public static let partialSyncDuration = "kubeproxy_sync_partial_proxy_rules_duration_seconds"
        public static let lastSyncTimestamp = "kubeproxy_sync_proxy_rules_last_timestamp_seconds"
        public static let lastQueuedTimestamp = "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds"
        public static let networkProgrammingDuration = "kubeproxy_network_programming_duration_seconds"
        public static let endpointChangesPending = "kubeproxy_sync_proxy_rules_endpoint_changes_pending"
        public static let endpointChangesTotal = "kubeproxy_sync_proxy_rules_endpoint_changes_total"
        public static let serviceChangesPending = "kubeproxy_sync_proxy_rules_service_changes_pending"
        public static let serviceChangesTotal = "kubeproxy_sync_proxy_rules_service_changes_total"
        public static let syncFailures = "kubeproxy_sync_proxy_rules_nftables_sync_failures_total"
        public static let healthzTotal = "kubeproxy_proxy_healthz_total"
        public static let livezTotal = "kubeproxy_proxy_livez_total"
        public static let conntrackDeleted = "kubeproxy_conntrack_reconciler_deleted_entries_total"
        /// A gauge despite its name, as in kube-proxy.
        public static let noLocalEndpoints = "kubeproxy_sync_proxy_rules_no_local_endpoints_total"
        public static let kernelOperations = "nftproxy_kernel_operations_total"
        public static let syncs = "nftproxy_syncs_total"
        public static let watchRestarts = "nftproxy_watch_restarts_total"
        public static let relists = "nftproxy_relists_total"
        public static let apiErrors = "nftproxy_api_errors_total"
    }

    private let syncDuration: Metrics.Timer
    private let fullSyncDuration: Metrics.Timer
    private let partialSyncDuration: Metrics.Timer
    private let networkProgramming: Metrics.Timer
    private let lastSync: Metrics.Gauge
    private let lastQueued: Metrics.Gauge
    private let endpointChangesPending: Metrics.Gauge
    private let serviceChangesPending: Metrics.Gauge
    private let endpointChangesTotal: Metrics.Counter
    private let serviceChangesTotal: Metrics.Counter
    private let syncFailures: Metrics.Counter
    private let conntrackDeleted: Metrics.Counter
    private let kernelOperations: Metrics.Counter

    /// A new set of metrics in a registry of its own.
    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // kube-proxy's buckets: sync durations from 1 ms doubling to about 16 s; network
        // programming from 250 ms (in steps, then coarser) up to 30 minutes.
        let syncBuckets = (0..<15).map { Duration.microseconds(1000 << $0) }
        for name in [Name.syncDuration, Name.fullSyncDuration, Name.partialSyncDuration] {
            factory.durationHistogramBuckets[name] = syncBuckets
        }
        factory.durationHistogramBuckets[Name.networkProgrammingDuration] =
            [Duration.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100)]
            + stride(from: 250, through: 5000, by: 250).map { Duration.milliseconds($0) }
            + [5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800].map { Duration.seconds($0) }
        self.registry = registry
        self.factory = factory
        syncDuration = Metrics.Timer(label: Name.syncDuration, factory: factory)
        fullSyncDuration = Metrics.Timer(label: Name.fullSyncDuration, factory: factory)
        partialSyncDuration = Metrics.Timer(label: Name.partialSyncDuration, factory: factory)
        networkProgramming = Metrics.Timer(label: Name.networkProgrammingDuration, factory: factory)
        lastSync = Metrics.Gauge(label: Name.lastSyncTimestamp, factory: factory)
        lastQueued = Metrics.Gauge(label: Name.lastQueuedTimestamp, factory: factory)
        endpointChangesPending = Metrics.Gauge(label: Name.endpointChangesPending, factory: factory)
        serviceChangesPending = Metrics.Gauge(label: Name.serviceChangesPending, factory: factory)
        endpointChangesTotal = Metrics.Counter(label: Name.endpointChangesTotal, factory: factory)
        serviceChangesTotal = Metrics.Counter(label: Name.serviceChangesTotal, factory: factory)
        syncFailures = Metrics.Counter(label: Name.syncFailures, factory: factory)
        conntrackDeleted = Metrics.Counter(label: Name.conntrackDeleted, factory: factory)
        kernelOperations = Metrics.Counter(label: Name.kernelOperations, factory: factory)
    }

    /// The Prometheus text exposition of every metric.
    public func render() -> String { registry.emitToString() }

    // MARK: Changes and syncs

    /// Changes arrived from the API: `services` Service changes and `endpoints` EndpointSlice
    /// changes; `pendingServices` and `pendingEndpoints` are now waiting for a sync.
    public func changesQueued(services: Int, endpoints: Int, pendingServices: Int, pendingEndpoints: Int) {
        serviceChangesTotal.increment(by: services)
        endpointChangesTotal.increment(by: endpoints)
        serviceChangesPending.record(pendingServices)
        endpointChangesPending.record(pendingEndpoints)
        lastQueued.record(Date().timeIntervalSince1970)
    }

    /// A sync took every pending change.
    public func changesTaken() {
        serviceChangesPending.record(0)
        endpointChangesPending.record(0)
    }

    /// An endpoint change reached the kernel `latency` after the control plane recorded it
    /// (its EndpointSlice's `endpoints.kubernetes.io/last-change-trigger-time`).
    public func networkProgrammed(latency: Duration) {
        networkProgramming.recordNanoseconds(Int64(latency.components.seconds) * 1_000_000_000
                                             + latency.components.attoseconds / 1_000_000_000)
    }

    public func serviceProxy(_ proxy: ServiceProxy, didApply report: ApplyReport) {
        record(syncDuration, report.duration)
        record(report.incremental ? partialSyncDuration : fullSyncDuration, report.duration)
        lastSync.record(Date().timeIntervalSince1970)
        kernelOperations.increment(by: report.sync.operations)
        conntrackDeleted.increment(by: report.flowsDeleted)
        let dimensions: [(String, String)]
        switch report.path {
        case .incremental: dimensions = [("path", "incremental"), ("reason", "")]
        case .full(let reason): dimensions = [("path", "full"), ("reason", Self.code(reason))]
        }
        Metrics.Counter(label: Name.syncs, dimensions: dimensions, factory: factory).increment()
    }

    public func serviceProxy(_ proxy: ServiceProxy, didFail error: ApplyError, after duration: Duration) {
        syncFailures.increment()
    }

    /// Service ports whose traffic policy Local finds no endpoint on this node, by policy
    /// (`traffic_policy` "internal" or "external"), as of the last sync.
    public func noLocalEndpoints(_ counts: NoLocalEndpoints) {
        for (policy, count) in [("internal", counts.internal), ("external", counts.external)] {
            Metrics.Gauge(label: Name.noLocalEndpoints, dimensions: [("traffic_policy", policy)], factory: factory).record(count)
        }
    }

    // MARK: Health and the API

    /// A `/healthz` (or `/livez`) answer with this status code was sent.
    public func healthAnswered(livez: Bool, code: Int) {
        Metrics.Counter(label: livez ? Name.livezTotal : Name.healthzTotal, dimensions: [("code", String(code))],
                factory: factory).increment()
    }

    /// A watch of `resource` ended and was restarted, for `reason`.
    public func watchRestarted(resource: String, reason: String) {
        Metrics.Counter(label: Name.watchRestarts, dimensions: [("resource", resource), ("reason", reason)], factory: factory)
            .increment()
    }

    /// `resource` was listed again from scratch (after 410 Gone).
    public func relisted(resource: String) {
        Metrics.Counter(label: Name.relists, dimensions: [("resource", resource)], factory: factory).increment()
    }

    /// An API request failed with this HTTP status code (0: no response).
    public func apiError(code: Int) {
        Metrics.Counter(label: Name.apiErrors, dimensions: [("code", String(code))], factory: factory).increment()
    }

    private func record(_ timer: Metrics.Timer, _ duration: Duration) {
        timer.recordNanoseconds(Int64(duration.components.seconds) * 1_000_000_000
                                + duration.components.attoseconds / 1_000_000_000)
    }

    private static func code(_ reason: ApplyReport.FullSyncReason) -> String {
        switch reason {
        case .firstApply: return "first-apply"
        case .requested: return "periodic"
        case .previousApplyFailed: return "previous-failed"
        case .generationMoved: return "foreign-writer"
        case .commitOvertaken: return "commit-overtaken"
        case .setOverflow: return "set-overflow"
        }
    }
}
