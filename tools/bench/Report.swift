import ArgumentParser
import Foundation

/// `nftproxy-bench report`: markdown tables from the JSON that `run` and `load` wrote.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print markdown tables from the JSON results of run and load.",
        discussion: """
            Reads every run-*.json (output of run) and load-*.json (output of load; the label a is \
            our own dump, b kube-proxy's layout, any other label an extra baseline) in the directory.
            """)

    @Option(help: "Directory holding the JSON results.")
    var results: String

    func run() throws {
        let directory = URL(fileURLWithPath: results)
        let names = try FileManager.default.contentsOfDirectory(atPath: results).sorted()
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        func load<T: Decodable>(_ prefix: String) throws -> [T] {
            try names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".json") }.map {
                try decoder.decode(T.self, from: Data(contentsOf: directory.appendingPathComponent($0)))
            }
        }
        let runs: [RunResult] = try load("run-")
        let loads: [LoadResult] = try load("load-")
        writeOut(Tables(runs: runs.sorted { ($0.services, -$0.nodes) < ($1.services, -$1.nodes) }, loads: loads).markdown)
    }
}

/// The tables of docs/benchmarks.md.
struct Tables {
    var runs: [RunResult]
    var loads: [LoadResult]

    private func load(_ label: String, _ run: RunResult) -> LoadResult? {
        // kube-proxy's layout (b) has no hairpin set: node names do not change it.
        loads.first { $0.label == label && $0.services == run.services && (label == "b" || ($0.nodes ?? 0) == run.nodes) }
    }

    /// "10,000 × 10", with "(no node names)" for the worst case next to runs with nodes.
    private func workload(_ r: RunResult) -> String {
        "\(Format.count(r.services)) × \(r.endpoints)" + (r.nodes == 0 ? " (no node names)" : "")
    }

    private var extraLabels: [String] {
        Set(loads.map(\.label)).subtracting(["a", "b"]).sorted()
    }

    var markdown: String {
        [programming, changes, restart, extras].filter { !$0.isEmpty }.joined(separator: "\n")
    }

    private func ms(_ seconds: Double) -> String { Format.duration(seconds) }

    private func cpu(_ t: Timing) -> String { "\(ms(t.seconds)) (\(ms(t.cpu.user)) + \(ms(t.cpu.system)))" }

    /// "2.99 s (2.07 s + 897 ms)", "> 300 s", "failed".
    private func cell(_ result: LoadResult?) -> String {
        guard let result else { return "not run" }
        if result.timedOut { return "> \(Int(result.timeoutSeconds)) s" }
        guard result.error == nil else { return "failed" }
        return "\(ms(result.seconds)) (\(ms(result.cpu.user)) + \(ms(result.cpu.system)))"
    }

    /// How many times faster nftproxy's compile + sync is than a baseline.
    private func ratio(_ baseline: LoadResult?, _ ours: Double) -> String {
        guard let baseline else { return "–" }
        if !baseline.timedOut, baseline.error == nil {
            return String(format: "%.0f×", baseline.seconds / ours)
        }
        if baseline.timedOut {
            return String(format: "> %.0f×", baseline.timeoutSeconds / ours)
        }
        return "–"
    }

    private var programming: String {
        var out = """
            ### Programming everything from scratch

            Wall time; in parentheses the (user + system) CPU time: for nftproxy, user is compiling, \
            planning and libnftnl encoding and system the kernel processing the batch; for `nft -f`, \
            user is nft parsing and evaluating the script. "compile + sync" is one \
            `ServiceProxy.apply` into an empty namespace, nftproxy's whole path from ServiceMap to \
            committed kernel state; "compile" is the compiler's share, measured alone. The last \
            column compares "compile + sync" with (b).

            | services × endpoints | elements | compile | compile + sync | netlink batch | (a) `nft -f` our dump | (b) `nft -f` kube-proxy layout | (b) ÷ compile + sync |
            |---|---|---|---|---|---|---|---|

            """
        for r in runs {
            let total = r.fullSync.timing.seconds
            out += "| \(workload(r)) | \(Format.count(r.ruleset.elements)) | \(ms(r.compile.seconds)) "
                + "| **\(cpu(r.fullSync.timing))** | \(r.fullSync.batchBytes.map { Format.bytes($0) } ?? "< 1 MiB") "
                + "| \(cell(load("a", r))) | \(cell(load("b", r))) | \(ratio(load("b", r), total)) |\n"
        }
        return out
    }

    private var changes: String {
        var out = """
            ### Single-endpoint change

            One endpoint address of one service replaced; \(runs.first?.changeStats.count ?? 0) different services per row. \
            "ServiceProxy.apply" is the daemon's path: compare the new ServiceMap with the previous \
            one, compile the changed service, generation check, TableDiff of what it touched, encode, \
            commit, stale-flow check. "… changed service named" is the same given the name of the \
            changed service as well, as the daemon can from its watch events: no other service is \
            compared. "first apply after the full sync" is the same proxy given the \
            unchanged map right after programming from scratch: it builds the per-service index \
            (once per process) and commits nothing. "commit alone" is `NftablesClient.commit` of \
            such a change (encode + kernel). The last two columns are the way around it, for \
            comparison: recompiling the whole map and TableDiff of the two full rulesets. \
            Median / p95 (max).

            | services × endpoints | ServiceProxy.apply | … changed service named | operations | first apply after the full sync | commit alone | full recompile | TableDiff of full rulesets |
            |---|---|---|---|---|---|---|---|

            """
        for r in runs {
            let s = r.changeStats, n = r.namedChangeStats, c = r.commitStats
            out += "| \(workload(r)) | **\(ms(s.apply.median))** / \(ms(s.apply.p95)) (\(ms(s.apply.max))) "
                + "| **\(ms(n.apply.median))** / \(ms(n.apply.p95)) (\(ms(n.apply.max))) "
                + "| \(Format.count(s.operations.median)) | \(ms(r.unchangedSync.timing.seconds)) "
                + "| \(ms(c.apply.median)) / \(ms(c.apply.p95)) | \(ms(c.recompile.median)) / \(ms(c.recompile.p95)) "
                + "| \(ms(c.plan.median)) / \(ms(c.plan.p95)) |\n"
        }
        return out
    }

    private var restart: String {
        var out = """
            ### Restart and memory

            A fresh RulesetSync first reads our tables back over netlink: set declarations, \
            chains, rules and the small sets dumped, the backends maps' elements looked up by the \
            keys the verdict maps imply. "… dumping every set" is the same read-back with every \
            set dumped (as before; quadratic in the kernel). Peak memory is this process's peak \
            resident set (VmHWM; ru_maxrss agrees), one process per row.

            | services × endpoints | read-back alone | … dumping every set | fresh RulesetSync + one change | peak RSS after full sync | peak RSS, whole run |
            |---|---|---|---|---|---|

            """
        for r in runs {
            out += "| \(workload(r)) | \(cpu(r.readBack)) | \(r.readBackDumped.map(cpu) ?? "–") | \(cpu(r.restartSync.timing)) "
                + "| \(r.memory.afterFullSync.peakKiB / 1024) MiB | **\(r.memory.end.peakKiB / 1024) MiB** |\n"
        }
        return out
    }

    private var extras: String {
        guard !extraLabels.isEmpty else { return "" }
        var out = """
            ### Other baselines

            | baseline | services × endpoints | script | `nft -f` |
            |---|---|---|---|

            """
        for label in extraLabels {
            for result in loads.filter({ $0.label == label }).sorted(by: { ($0.services ?? 0) < ($1.services ?? 0) }) {
                out += "| \(label) | \(Format.count(result.services ?? 0)) × \(result.endpoints ?? 0) "
                    + "| \(Format.bytes(result.bytes)) | \(cell(result)) |\n"
            }
        }
        return out
    }
}
