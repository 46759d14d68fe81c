import Nftables
import ProxyEngine
import ServiceModel

/// What `nftproxy-bench run` measured (written as JSON; `report` turns it into tables).
///
/// Every `Timing` is CLOCK_MONOTONIC wall time plus the measuring thread's user and
/// system CPU time. Work the kernel does for a netlink batch happens inside our `sendmsg`,
/// on our thread, so `system` is the kernel's share and `user` ours (planning, libnftnl
/// encoding, reading ACKs); wall minus both is time spent waiting for a CPU.
struct RunResult: Codable {
    var services: Int
    var endpoints: Int
    var nodePorts: Int
    /// Nodes the endpoints are spread over (0: no node names, all possibly local).
    var nodes: Int
    var namespace: String
    var ruleset: RulesetSize

    /// Building the ServiceMap of the workload (not part of any target).
    var generate: Timing
    /// `Compiler.compile`: ServiceMap -> Ruleset.
    var compile: Timing
    /// `ServiceProxy.apply` into the empty namespace (compile + sync): program everything from scratch.
    var fullSync: SyncSample
    /// The same `ServiceProxy` again with the same map: its first incremental apply, which
    /// builds the per-service index; must commit nothing.
    var unchangedSync: SyncSample
    /// Single-endpoint changes through that `ServiceProxy` (the daemon's path), given the whole map.
    var changes: [ChangeSample]
    /// As many more, given the name of the changed service too (nothing else is compared).
    var namedChanges: [ChangeSample]
    /// Further single-endpoint changes, planned with `TableDiff` against the previous
    /// ruleset and committed with `NftablesClient.commit` alone: the kernel's share.
    var commits: [ChangeSample]
    var changeStats: ChangeStats
    var namedChangeStats: ChangeStats
    var commitStats: ChangeStats
    /// `KernelReader.read` of both tables on a fresh socket: what a restart reads first.
    var readBack: Timing
    var readBackElements: Int
    /// Whether the ruleset had per-endpoint counters (nil in results written before they could be turned off).
    var endpointCounters: Bool?
    /// The daemon's scrape of every endpoint's counters (`EndpointTrafficMetrics`, no limit):
    /// the counting sets dumped and added to the series of the programmed map, written as
    /// Prometheus text; and how many endpoints it exported.
    var scrape: Timing?
    var scrapeEndpoints: Int?
    /// The same as `nftproxy stats` reads it: both tables back, names from element comments.
    var statsRead: Timing?
    /// The first scrape after a sync, which also computes the series of the programmed map
    /// (older results: computing the map's frontends and names alone).
    var scrapeNaming: Timing?
    /// The same read-back dumping every set (`KernelReader(elements: .dumpEverySet)`, as
    /// every read-back did before the backends maps were looked up by key); nil in older results.
    var readBackDumped: Timing?
    /// A fresh `RulesetSync` (as after a restart) applying one more single-endpoint change.
    var restartSync: SyncSample
    /// A last fresh `RulesetSync` of the final ruleset: must commit nothing (kernel == desired).
    var verifySync: SyncSample
    /// Removing both tables.
    var teardown: Timing
    var memory: Memory

    struct RulesetSize: Codable {
        var elements: Int
        var sets: Int
        var chains: Int
        var rules: Int

        init(_ ruleset: Ruleset) {
            let tables = ruleset.tables
            elements = tables.reduce(0) { $0 + $1.sets.reduce(0) { $0 + $1.elements.count } }
            sets = tables.reduce(0) { $0 + $1.sets.count }
            chains = tables.reduce(0) { $0 + $1.chains.count }
            rules = tables.reduce(0) { $0 + $1.chains.reduce(0) { $0 + $1.rules.count } }
        }
    }

    struct Memory: Codable {
        var afterCompile: MemorySample
        var afterFullSync: MemorySample
        var afterChanges: MemorySample
        var end: MemorySample
    }
}

/// One `ServiceProxy.apply` or `RulesetSync.sync` call.
struct SyncSample: Codable {
    var timing: Timing
    var operations: Int
    var elementsAdded: Int
    var elementsRemoved: Int
    var readBack: Bool
    var retries: Int
    /// Size of the netlink batch, when known (see `Run.batchBytes`).
    var batchBytes: Int?

    init(_ report: SyncReport, _ timing: Timing, batchBytes: Int? = nil) {
        self.timing = timing
        operations = report.operations
        elementsAdded = report.elementsAdded
        elementsRemoved = report.elementsRemoved
        readBack = report.readBack
        retries = report.retries
        self.batchBytes = batchBytes
    }
}

/// One endpoint address of one service replaced, and the ruleset brought up to date.
struct ChangeSample: Codable {
    var service: String
    var oldAddress: String
    var newAddress: String
    /// `ServiceProxy.apply` of the changed map (compare the maps, compile the changed
    /// service, generation check, encode, commit, stale-flow check), for `Run.changes`.
    var apply: SyncSample?
    /// The other way, for `Run.commits`: compiling the whole changed ServiceMap again...
    var recompile: Timing?
    /// ...`TableDiff` of the previous full ruleset against the new one (no kernel)...
    var plan: Timing?
    /// ...giving this many operations...
    var operations: Int?
    /// ...and `NftablesClient.commit` of that transaction (encode + kernel).
    var commit: Timing?

    init(_ edit: (service: ServiceName, old: IPAddress, new: IPAddress), apply: SyncSample? = nil) {
        service = edit.service.description
        oldAddress = edit.old.description
        newAddress = edit.new.description
        self.apply = apply
    }
}

/// Order statistics over a list of changes.
struct ChangeStats: Codable {
    var count: Int
    var recompile: Summary
    var plan: Summary
    /// `apply` wall time, or `commit` wall time for commit-only changes.
    var apply: Summary
    var operations: Summary

    init(_ samples: [ChangeSample]) {
        func summary(_ value: (ChangeSample) -> Double?) -> Summary { Summary(samples.compactMap(value)) }
        count = samples.count
        recompile = summary { $0.recompile?.seconds }
        plan = summary { $0.plan?.seconds }
        apply = summary { ($0.apply?.timing ?? $0.commit)?.seconds }
        operations = summary { ($0.apply?.operations ?? $0.operations).map(Double.init) }
    }
}
