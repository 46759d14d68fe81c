import ArgumentParser
import Foundation

/// What `nftproxy-bench e2e` measured (written as JSON; `e2e-report` turns it into a table).
struct EndToEndResult: Codable {
    /// UTC time the run started.
    var date: String
    var cpus: Int
    /// /proc/loadavg (1, 5, 15 minutes) before and after the run.
    var loadBefore: String
    var loadAfter: String
    var nftproxy: String
    /// The python interpreter of the reference rows (nil: not run).
    var python: String?
    var endpoints: Int
    var nodes: Int
    var seed: UInt64
    var repeats: Int
    var timeoutSeconds: Double
    var memoryLimitMiB: Int?
    /// The arguments every nftproxy run got besides `-f FILE` (and `--netns NS` for apply).
    var nodeArguments: [String]
    var inputs: [Input]
    var rows: [Row]

    /// One generated input file and its moved-one-endpoint variant.
    struct Input: Codable {
        var format: RealisticCluster.Format
        var services: Int
        var bytes: Int
        var movedBytes: Int
        var generateSeconds: Double
    }

    /// What a row runs.
    enum Step: String, Codable, CaseIterable {
        /// `python3 -c 'import json, sys; json.load(open(sys.argv[1]))' FILE` (JSON only): the reference.
        case pythonJSONLoad = "python json.load"
        /// `nftproxy dump -f FILE`, the ruleset to a file.
        case dump = "dump -f"
        /// `nftproxy apply -f FILE --netns NS` into a new, empty namespace.
        case apply = "apply -f"
        /// `nftproxy apply -f MOVED --netns NS` right after `apply`: one endpoint moved.
        case applyMoved = "apply -f, one endpoint moved"
    }

    enum Outcome: String, Codable {
        case ok
        case timedOut = "timed out"
        case memoryExceeded = "over the memory limit"
        case failed
        case notRun = "not run"
    }

    struct Row: Codable {
        var format: RealisticCluster.Format
        var services: Int
        var step: Step
        var samples: [ProcessSample]
        /// Operations `apply` reported committing, one per sample that said.
        var operations: [Int]
        var outcome: Outcome
        /// Why a row was not run or failed.
        var note: String?
        /// Wall seconds and peak RSS (MiB) of the successful samples.
        var seconds: Summary
        var maxRSSMiB: Summary
        var userSeconds: Summary
        var systemSeconds: Summary

        init(format: RealisticCluster.Format, services: Int, step: Step, samples: [ProcessSample],
             operations: [Int] = [], outcome: Outcome, note: String? = nil) {
            self.format = format
            self.services = services
            self.step = step
            self.samples = samples
            self.operations = operations
            self.outcome = outcome
            self.note = note
            let good = samples.filter(\.succeeded)
            seconds = Summary(good.map(\.seconds))
            maxRSSMiB = Summary(good.map { Double($0.maxRSSKiB) / 1024 })
            userSeconds = Summary(good.map(\.cpu.user))
            systemSeconds = Summary(good.map(\.cpu.system))
        }
    }
}

/// The end-to-end table of docs/benchmarks.md (markdown) or of the terminal (the same
/// table, as text).
struct EndToEndTable {
    var result: EndToEndResult

    private func row(_ format: RealisticCluster.Format, _ services: Int, _ step: EndToEndResult.Step) -> EndToEndResult.Row? {
        result.rows.first { $0.format == format && $0.services == services && $0.step == step }
    }

    /// "**20.8 s** (20.1 s–21.5 s), CPU 20.3 s, 975 MiB": median wall time (min–max), median
    /// user + system CPU time, median peak RSS; what happened when it did not finish.
    private func cell(_ row: EndToEndResult.Row?) -> String {
        guard let row else { return "–" }
        switch row.outcome {
        case .ok:
            let s = row.seconds
            let spread = s.count > 1 ? " (\(Format.duration(s.min))–\(Format.duration(s.max)))" : ""
            let cpu = row.userSeconds.median + row.systemSeconds.median
            return "**\(Format.duration(s.median))**\(spread), CPU \(Format.duration(cpu)), \(Format.count(Int(row.maxRSSMiB.median.rounded()))) MiB"
        case .timedOut: return "> \(row.note ?? "\(Int(result.timeoutSeconds)) s") (timed out\(soFar(row)))"
        case .memoryExceeded: return "killed above \(row.note ?? "\(Format.count(result.memoryLimitMiB ?? 0)) MiB")\(soFar(row))"
        case .failed: return "failed" + (row.note.map { ": \($0)" } ?? "")
        case .notRun: return "not run" + (row.note.map { " (\($0))" } ?? "")
        }
    }

    /// "; CPU 75.2 s, 1,840 MiB until then": what a killed process had used.
    private func soFar(_ row: EndToEndResult.Row) -> String {
        guard let last = row.samples.last else { return "" }
        return "; CPU \(Format.duration(last.cpu.user + last.cpu.system)), \(Format.count(last.maxRSSKiB / 1024)) MiB until then"
    }

    var markdown: String {
        var out = """
            | input | services × endpoints | file | python `json.load` | `dump -f` | `apply -f` from scratch | `apply -f`, one endpoint moved | operations committed (from scratch / moved) |
            |---|---|---|---|---|---|---|---|

            """
        let keys = result.inputs.sorted { ($0.format.rawValue, $0.services) < ($1.format.rawValue, $1.services) }
        for input in keys {
            let apply = row(input.format, input.services, .apply), moved = row(input.format, input.services, .applyMoved)
            func operations(_ row: EndToEndResult.Row?) -> String {
                guard let first = row?.operations.first else { return "–" }
                return Format.count(first)
            }
            out += "| \(input.format.rawValue.uppercased()) | \(Format.count(input.services)) × \(result.endpoints) "
                + "| \(Format.bytes(input.bytes)) "
                + "| \(input.format == .json ? cell(row(input.format, input.services, .pythonJSONLoad)) : "–") "
                + "| \(cell(row(input.format, input.services, .dump))) | \(cell(apply)) | \(cell(moved)) "
                + "| \(operations(apply)) / \(operations(moved)) |\n"
        }
        return out
    }
}

/// `nftproxy-bench e2e-report`: the markdown table of an `e2e` result.
struct EndToEndReport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e-report",
        abstract: "Print the markdown table of the JSON that `nftproxy-bench e2e` wrote.")

    @Option(help: "The JSON output of e2e (repeatable: the rows of several runs in one table, e.g. more repetitions at small N).")
    var file: [String]

    func validate() throws {
        if file.isEmpty { throw ValidationError("give at least one --file") }
    }

    func run() throws {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var merged: EndToEndResult?
        for path in file {
            let result = try decoder.decode(EndToEndResult.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            guard var all = merged else { merged = result; continue }
            all.inputs += result.inputs
            all.rows += result.rows
            merged = all
        }
        if let merged { writeOut(EndToEndTable(result: merged).markdown) }
    }
}
