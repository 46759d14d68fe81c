import Netlink
import Nftables
import NIOCore
import ProxyCompiler
import ProxyDaemon
import ProxyEngine
import ServiceModel

/// The measurement procedure of `run`, step by step. Each phase is a function of its
/// own, so what it allocated (a RulesetSync and the ruleset it remembers, read-back
/// copies) is freed before the next phase starts and peak memory stays the product's.
struct Measurement {
    let workload: Workload
    let namespace: String
    let samples: Int
    var compiler: Compiler { Compiler(node: workload.node) }

    func run() throws -> RunResult {
        let (map, generate) = Timing.measure { workload.serviceMap() }
        var editor = Editor(map: map)
        let (size, compile) = try compileAlone(editor.map)
        let afterCompile = MemorySample.now()

        let synced = try program(editor: &editor)
        let afterChanges = MemorySample.now()
        // From here on the proxy is gone; the kernel holds the compilation of the edited map.
        var ruleset = compiler.compile(editor.map).ruleset
        let client = try NftablesClient(networkNamespace: namespace)
        let commits = try commitAlone(&ruleset, editor: &editor, client: client)
        let restart = try self.restart(&ruleset, editor: &editor)
        let end = MemorySample.now()

        let (_, teardown) = try Timing.measure {
            var transaction = Transaction()
            for table in ruleset.tables { transaction.remove(family: table.family, table: table.name) }
            try client.commit(transaction)
        }
        return RunResult(
            services: workload.services, endpoints: workload.endpoints, nodePorts: workload.nodePorts,
            nodes: workload.nodes,
            namespace: namespace, ruleset: size, generate: generate, compile: compile,
            fullSync: synced.fullSync, unchangedSync: synced.unchangedSync,
            changes: synced.changes, namedChanges: synced.namedChanges, commits: commits,
            changeStats: ChangeStats(synced.changes), namedChangeStats: ChangeStats(synced.namedChanges),
            commitStats: ChangeStats(commits),
            readBack: restart.readBack, readBackElements: restart.readBackElements,
            endpointCounters: workload.endpointCounters, scrape: restart.scrape, scrapeEndpoints: restart.scrapeEndpoints,
            statsRead: restart.statsRead, scrapeNaming: restart.naming,
            readBackDumped: restart.readBackDumped,
            restartSync: restart.sync, verifySync: restart.verify, teardown: teardown,
            memory: RunResult.Memory(afterCompile: afterCompile, afterFullSync: synced.afterFullSync,
                                     afterChanges: afterChanges, end: end))
    }

    /// The compiler alone; its ruleset is dropped on return, so that the peak memory of what
    /// follows is the proxy's.
    private func compileAlone(_ map: ServiceMap) throws -> (RunResult.RulesetSize, Timing) {
        let (compilation, compile) = Timing.measure { compiler.compile(map) }
        for warning in compilation.warnings { printErr("warning: \(warning)") }
        return (RunResult.RulesetSize(compilation.ruleset), compile)
    }

    /// From scratch through `ServiceProxy` (compile + sync), the same map again (the first
    /// incremental apply, which builds the per-service index), then single-endpoint changes
    /// through that proxy, as the daemon applies them: given the whole map, then given the
    /// name of the changed service as well. The proxy is dropped on return.
    private func program(editor: inout Editor) throws
        -> (fullSync: SyncSample, afterFullSync: MemorySample, unchangedSync: SyncSample, changes: [ChangeSample],
            namedChanges: [ChangeSample]) {
        let kernel = try NetlinkKernel(networkNamespace: namespace)
        let proxy = ServiceProxy(node: workload.node, kernel: kernel)
        let (fullReport, fullTiming) = try Timing.measure { try proxy.apply(editor.map) }
        let fullSync = SyncSample(fullReport.sync, fullTiming, batchBytes: Self.batchBytes(kernel.client))
        let afterFullSync = MemorySample.now()
        let (unchangedReport, unchangedTiming) = try Timing.measure { try proxy.apply(editor.map) }
        guard unchangedReport.sync.operations == 0, unchangedReport.incremental else {
            throw BenchError("an unchanged apply committed \(unchangedReport.sync.summaries)")
        }
        var changes: [ChangeSample] = []
        for _ in 0..<samples {
            let edit = editor.replaceNextEndpoint()
            let (report, timing) = try Timing.measure { try proxy.apply(editor.map) }
            guard report.incremental, report.changedServices == [edit.service] else {
                throw BenchError("a single-endpoint change was not applied incrementally: \(report.changedServices)")
            }
            changes.append(ChangeSample(edit, apply: SyncSample(report.sync, timing)))
        }
        // As many again with the changed service named, as the daemon can: nothing is compared.
        var namedChanges: [ChangeSample] = []
        for _ in 0..<samples {
            let edit = editor.replaceNextEndpoint()
            let (report, timing) = try Timing.measure { try proxy.apply(editor.map, changed: [edit.service]) }
            guard report.incremental, report.changedServices == [edit.service] else {
                throw BenchError("a named single-endpoint change was not applied incrementally: \(report.changedServices)")
            }
            namedChanges.append(ChangeSample(edit, apply: SyncSample(report.sync, timing)))
        }
        return (fullSync, afterFullSync, SyncSample(unchangedReport.sync, unchangedTiming), changes, namedChanges)
    }

    /// Single-endpoint changes the other way: the whole map recompiled, planned with TableDiff
    /// of the full rulesets, and committed with NftablesClient alone (the encoder's and the
    /// kernel's share of a change).
    private func commitAlone(_ ruleset: inout Ruleset, editor: inout Editor, client: NftablesClient) throws
        -> [ChangeSample] {
        var commits: [ChangeSample] = []
        for _ in 0..<samples {
            let (planned, next, transaction) = step(&editor, from: ruleset)
            let (_, timing) = try Timing.measure { try client.commit(transaction) }
            var sample = planned
            sample.commit = timing
            commits.append(sample)
            ruleset = next
        }
        return commits
    }

    /// With endpoint counters: an element in every counting set for every pair (frontend,
    /// endpoint), as the packet path makes them when every endpoint carries traffic, so that
    /// read-backs and the scrape below face the largest sets they can meet.
    private func fillCountingSets(_ ruleset: Ruleset) throws {
        try CountingSets.fill(ruleset, client: try NftablesClient(networkNamespace: namespace))
    }

    /// A restart: read-back alone, a fresh RulesetSync applying one more change, and a
    /// last fresh RulesetSync that must find the kernel equal to the desired ruleset.
    private func restart(_ ruleset: inout Ruleset, editor: inout Editor) throws
        -> (readBack: Timing, readBackElements: Int, readBackDumped: Timing, scrape: Timing, scrapeEndpoints: Int,
            statsRead: Timing, naming: Timing, sync: SyncSample, verify: SyncSample) {
        let tables = ruleset.tables
        try fillCountingSets(ruleset)
        func read(_ elements: KernelReader.ElementReading) throws -> (Int, Timing) {
            let reader = KernelReader(socket: try NftablesClient(networkNamespace: namespace).socket, elements: elements,
                                      readsCounts: elements == .dumpEverySet)
            return try Timing.measure {
                try tables.reduce(0) { count, table in
                    // The dynamic sets' elements are the packet path's: only a dump of every set reads them.
                    count + (try reader.read(table.family, table.name)?.table.sets.filter { !$0.flags.contains(.dynamic) }
                        .reduce(0) { $0 + $1.elements.count } ?? 0)
                }
            }
        }
        let (readBackElements, readBack) = try read(.lookUpDerivedKeys)
        let (dumpedElements, readBackDumped) = try read(.dumpEverySet)
        guard dumpedElements == readBackElements else {
            throw BenchError("the read-back found \(readBackElements) elements, a dump of every set \(dumpedElements)")
        }
        // A scrape of every endpoint's counters, with the daemon's own code: the counting sets
        // dumped and added to the series of the map it programmed. The first scrape after a
        // sync also computes those series (the daemon keeps them until its next sync).
        let metrics = EndpointTrafficMetrics(networkNamespace: namespace, limit: 0)
        metrics.programmed(editor.map, node: workload.node)
        var afterSyncText = ByteBuffer()
        let naming = Timing.measure { metrics.render(into: &afterSyncText) }.1
        var scrapeText = ByteBuffer()
        let scrape = Timing.measure { metrics.render(into: &scrapeText) }.1
        guard afterSyncText.readableBytes == scrapeText.readableBytes else {
            throw BenchError("two scrapes of the same counts wrote \(afterSyncText.readableBytes) and \(scrapeText.readableBytes) bytes")
        }
        let scrapeEndpoints = String(buffer: scrapeText).split(separator: "\n")
            .lazy.filter { $0.hasPrefix(EndpointTrafficMetrics.connectionsName + "{") }.count
        let reader = KernelReader(socket: try NftablesClient(networkNamespace: namespace).socket)
        // As `nftproxy stats` makes it, with no map: both tables read back, names from comments.
        let (statsEndpoints, statsRead) = try Timing.measure {
            var read: [Table] = []
            for table in tables { if let back = try reader.read(table.family, table.name) { read.append(back.table) } }
            return ServicePortTraffic.group(FrontendTraffic.read(Ruleset(tables: read))).reduce(0) { $0 + $1.endpoints.count }
        }
        guard statsEndpoints == scrapeEndpoints else {
            throw BenchError("the scrape found \(scrapeEndpoints) endpoints, a read of the whole tables \(statsEndpoints)")
        }
        ruleset = step(&editor, from: ruleset).next
        let sync = try fresh { try $0.sync(to: ruleset) }
        let verify = try fresh { try $0.sync(to: ruleset) }
        guard verify.operations == 0 else {
            throw BenchError("the kernel does not hold the desired ruleset: a fresh sync committed \(verify.operations) operations")
        }
        return (readBack, readBackElements, readBackDumped, scrape, scrapeEndpoints, statsRead, naming, sync, verify)
    }

    /// Times `body` on a RulesetSync with a new connection, which is dropped afterwards.
    private func fresh(_ body: (RulesetSync) throws -> SyncReport) throws -> SyncSample {
        let sync = RulesetSync(kernel: try NetlinkKernel(networkNamespace: namespace))
        let (report, timing) = try Timing.measure { try body(sync) }
        return SyncSample(report, timing)
    }

    /// Replaces one endpoint, recompiles the whole map, and plans against `previous` (timing both).
    private func step(_ editor: inout Editor, from previous: Ruleset)
        -> (sample: ChangeSample, next: Ruleset, transaction: Transaction) {
        let edit = editor.replaceNextEndpoint()
        let (next, recompile) = Timing.measure { compiler.compile(editor.map).ruleset }
        let (transaction, plan) = Timing.measure { TableDiff.transaction(from: previous, to: next) }
        var sample = ChangeSample(edit)
        sample.recompile = recompile
        sample.plan = plan
        sample.operations = transaction.operations.count
        return (sample, next, transaction)
    }

    /// Bytes of the largest batch committed on `client`'s socket so far, when above 1 MiB.
    ///
    /// `NftablesClient.commit` raises the socket's send buffer to the batch size + 32
    /// bytes (never below 1 MiB) before sending, and the kernel stores twice the value
    /// asked for: SO_SNDBUF / 2 - 32 is the batch size. Below 1 MiB it is not known.
    static func batchBytes(_ client: NftablesClient) -> Int? {
        guard let size = try? client.socket.sendBufferSize,
              size > 2 * NetlinkSocket.minimumSocketBufferSize else { return nil }
        return size / 2 - 32
    }
}

/// Applies single-endpoint changes to the workload's ServiceMap: each replaces one
/// endpoint address of a different service with an address never used before.
struct Editor {
    private(set) var map: ServiceMap
    private var count = 0

    init(map: ServiceMap) { self.map = map }

    /// Services are visited with a stride that spreads the first few hundred changes over
    /// the whole range (and never repeats one before all were changed).
    mutating func replaceNextEndpoint() -> (service: ServiceName, old: IPAddress, new: IPAddress) {
        let services = map.services.count
        let stride = Self.stride(for: services)
        let index = (count * stride + services / 7) % services
        let slot = count % max(1, map.services[index].ports[0].endpoints.count)
        let new = Workload.endpointIP(Workload.replacementBase + count)
        count += 1
        let old = map.services[index].ports[0].endpoints[slot].address
        map.services[index].ports[0].endpoints[slot].address = new
        return (map.services[index].name, old, new)
    }

    /// A step close to services / 41 that shares no factor with `services`.
    static func stride(for services: Int) -> Int {
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        var stride = max(1, services / 41)
        while gcd(stride, services) != 1 { stride += 1 }
        return stride
    }
}
