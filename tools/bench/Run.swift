import ArgumentParser

/// `nftproxy-bench run`: nftproxy's own path, measured in-process in a private namespace.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile and program N services x M endpoints into a private network namespace, then measure updates.",
        discussion: """
            In order: compile alone; ServiceProxy.apply from scratch; the same map again (must be 0 \
            operations); --changes single-endpoint changes through that ServiceProxy (one endpoint \
            address of one service replaced, the whole map given), as many giving the changed service's \
            name too; as many again recompiled in full, planned with TableDiff and committed with \
            NftablesClient alone; read-back of both tables alone; a fresh RulesetSync (a restart) \
            applying one more change; a last fresh sync that must find nothing to do. \
            Times are CLOCK_MONOTONIC with the thread's user/system CPU time; memory is this process's \
            peak RSS. JSON on stdout, a summary on stderr. The namespace nftp-bench-<pid>-<random> is \
            created for the run and deleted afterwards, also on SIGINT, SIGTERM and SIGHUP. Run one N \
            per process, so that peaks do not mix.
            """)

    @OptionGroup var options: WorkloadOptions

    @Option(help: "Single-endpoint changes to time (each way).")
    var changes = 20

    func run() throws {
        let namespace = try PrivateNamespace()
        defer { namespace.close() }
        let result = try Measurement(workload: options.workload, namespace: namespace.name, samples: changes).run()
        writeOut(jsonText(result) + "\n")
        printErr(summary(result))
    }

    private func summary(_ r: RunResult) -> String {
        func ms(_ seconds: Double) -> String { Format.duration(seconds) }
        func split(_ t: Timing) -> String { "\(ms(t.seconds)) (user \(ms(t.cpu.user)), sys \(ms(t.cpu.system)))" }
        func stats(_ s: ChangeStats) -> String {
            "median \(ms(s.apply.median)), p95 \(ms(s.apply.p95)), max \(ms(s.apply.max)), "
                + "operations \(Format.count(s.operations.median))"
                + (s.recompile.count > 0 ? "; full recompile \(ms(s.recompile.median)), TableDiff of full rulesets \(ms(s.plan.median))" : "")
        }
        return """
            nftproxy-bench run: \(r.services) services x \(r.endpoints) endpoints in netns \(r.namespace)
              ruleset: \(r.ruleset.elements) elements, \(r.ruleset.sets) sets/maps, \(r.ruleset.chains) chains, \(r.ruleset.rules) rules
              compile \(ms(r.compile.seconds))
              compile + sync (ServiceProxy.apply) \(split(r.fullSync.timing)), \(r.fullSync.operations) operations, batch \(Format.bytes(r.fullSync.batchBytes))
              first apply after it, unchanged (builds the per-service index) \(split(r.unchangedSync.timing)), \(r.unchangedSync.operations) operations
              change via ServiceProxy.apply (\(r.changeStats.count)): \(stats(r.changeStats))
              change via ServiceProxy.apply, changed service named (\(r.namedChangeStats.count)): \(stats(r.namedChangeStats))
              change the other way, commit alone (\(r.commitStats.count)): \(stats(r.commitStats))
              restart: read-back \(split(r.readBack)) (\(r.readBackElements) elements; dumping every set \(r.readBackDumped.map(split) ?? "-")); fresh sync of one change \(split(r.restartSync.timing)), \(r.restartSync.operations) operations
              endpoint counters \(r.endpointCounters == false ? "off" : "on"); scrape of every endpoint's counters \(r.scrape.map(split) ?? "-") (\(r.scrapeEndpoints ?? 0) endpoints; the first after a sync, computing the map's series too, \(r.scrapeNaming.map(split) ?? "-"); read as nftproxy stats does \(r.statsRead.map(split) ?? "-"))
              verify: fresh sync \(ms(r.verifySync.timing.seconds)), \(r.verifySync.operations) operations
              peak RSS: \(r.memory.afterFullSync.peakKiB / 1024) MiB after the full sync, \(r.memory.end.peakKiB / 1024) MiB in all (ru_maxrss \(r.memory.end.maxRSSKiB / 1024) MiB)
            """
    }
}
