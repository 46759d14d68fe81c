import ArgumentParser
import Foundation
import Sandbox

/// `nftproxy-bench e2e`: the `nftproxy` command line as a user runs it, one whole process
/// per measurement, on realistic `kubectl get -o json|yaml` files.
struct EndToEnd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e",
        abstract: "Time whole `nftproxy dump -f` and `apply -f` processes on realistic kubectl output, with peak RSS.",
        discussion: """
            For each format and number of services it writes a `kubectl get services,endpointslices \
            -A -o json|yaml` List (see `objects`) and its variant with one endpoint moved into a \
            scratch directory, then, --repeats times: python's json.load of the JSON file (the \
            reference, JSON only); `nftproxy dump -f FILE` (the ruleset to a file); and, in a network \
            namespace nftp-bench-<pid>-<random> created for it and deleted afterwards, `nftproxy \
            apply -f FILE --netns NS` from scratch followed by `apply -f MOVED --netns NS`. Every run \
            is one process, start to exit: CLOCK_MONOTONIC wall time around it, its CPU time and peak \
            RSS from wait4 (ru_maxrss). A process that outlives --timeout is killed and its row reported \
            as timed out, one that grows past --memory-limit likewise; such a row is not repeated and \
            not tried at larger N. JSON on stdout, a table on stderr.
            """)

    @Option(help: "Numbers of services, comma-separated.")
    var services = "1000,10000,50000"

    @Option(help: "Ready endpoints per service.")
    var endpoints = 10

    @Option(help: "Spread the endpoints over this many nodes; the benchmark programs node-0.")
    var nodes = 1000

    @Option(help: "Input formats, comma-separated: json, yaml.")
    var formats = "json,yaml"

    @Option(help: "Runs of each measurement (median and min–max are reported).")
    var repeats = 3

    @Option(help: "Seconds after which a process is killed and its row reported as timed out.")
    var timeout: Double = 300

    @Option(help: "MiB of resident memory above which a process is killed (0: no limit).")
    var memoryLimit = 8192

    @Option(help: "YAML rows only up to this many services (YAML is the slow format; raise it to measure more).")
    var yamlMaxServices = 10000

    @Option(help: "Seed of the generated names, uids and times.")
    var seed: UInt64 = 1

    @Option(help: "The nftproxy executable (default: the one built next to nftproxy-bench).")
    var nftproxy: String?

    @Option(help: "The python interpreter for the json.load reference (default: python3's sys.executable; 'none' skips it).")
    var python: String?

    @Option(help: "Directory for the generated files (default: a new one under /tmp, removed afterwards).")
    var workDir: String?

    @Option(help: "Also write the JSON to this file, rewritten after each input, so that an interrupted run keeps the rows it finished.")
    var output: String?

    @Flag(help: "Keep the generated files.")
    var keepFiles = false

    @Option(help: "Per-endpoint counters in the ruleset, as nftproxy's --endpoint-counters.")
    var endpointCounters = true

    @Flag(help: "Every tenth service externalTrafficPolicy Local with an externalIP, every tenth internalTrafficPolicy Local, every tenth sessionAffinity ClientIP (as `run --traffic-policies`).")
    var trafficPolicies = false

    var serviceCounts: [Int] { services.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    var formatList: [RealisticCluster.Format] {
        formats.split(separator: ",").compactMap { RealisticCluster.Format(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
    }

    func validate() throws {
        let counts = serviceCounts
        guard !counts.isEmpty, counts.count == services.split(separator: ",").count else {
            throw ValidationError("--services: a comma-separated list of numbers, e.g. 1000,10000")
        }
        for count in counts {
            if let problem = Workload(services: count, endpoints: endpoints, nodes: nodes).validate() {
                throw ValidationError(problem)
            }
        }
        guard nodes > 0 else { throw ValidationError("--nodes must be 1 or more (endpoints of real pods name their node)") }
        guard !formatList.isEmpty, formatList.count == formats.split(separator: ",").count else {
            throw ValidationError("--formats: json, yaml or json,yaml")
        }
        guard repeats >= 1 else { throw ValidationError("--repeats must be 1 or more") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        guard memoryLimit >= 0 else { throw ValidationError("--memory-limit must be 0 or more") }
    }

    func run() throws {
        let nftproxyPath = try nftproxy ?? BuiltProducts.path(of: "nftproxy")
        let pythonPath = try resolvePython()
        let directory = try workDir ?? Self.makeTemporaryDirectory()
        defer {
            if workDir == nil && !keepFiles { try? FileManager.default.removeItem(atPath: directory) }
        }
        var runner = EndToEndRunner(
            nftproxy: nftproxyPath, python: pythonPath, directory: directory, endpoints: endpoints, nodes: nodes,
            seed: seed, repeats: repeats, timeout: timeout, trafficPolicies: trafficPolicies,
            memoryLimitKiB: memoryLimit > 0 ? memoryLimit * 1024 : nil, keepFiles: keepFiles || workDir != nil,
            nodeArguments: EndToEndRunner.nodeArguments + ["--endpoint-counters=\(endpointCounters)"])
        let loadBefore = Self.loadAverage()
        let date = ISO8601DateFormatter().string(from: Date())
        func result() -> EndToEndResult {
            EndToEndResult(
                date: date, cpus: ProcessInfo.processInfo.activeProcessorCount, loadBefore: loadBefore,
                loadAfter: Self.loadAverage(), nftproxy: nftproxyPath, python: pythonPath, endpoints: endpoints, nodes: nodes,
                seed: seed, repeats: repeats, timeoutSeconds: timeout, memoryLimitMiB: memoryLimit > 0 ? memoryLimit : nil,
                nodeArguments: runner.nodeArguments, inputs: runner.inputs, rows: runner.rows)
        }
        for count in serviceCounts.sorted() {
            for format in formatList {
                if format == .yaml && count > yamlMaxServices {
                    runner.skip(format: format, services: count, note: "YAML above --yaml-max-services \(yamlMaxServices)")
                    continue
                }
                try runner.measure(format: format, services: count)
                // What is finished so far, so that an interrupted run keeps it.
                if let output { try Data((jsonText(result()) + "\n").utf8).write(to: URL(fileURLWithPath: output)) }
            }
        }
        let result = result()
        writeOut(jsonText(result) + "\n")
        printErr("\n" + EndToEndTable(result: result).markdown)
    }

    /// The interpreter itself, not a wrapper script (pyenv's shims are shell scripts that would add their own cost).
    private func resolvePython() throws -> String? {
        if python == "none" { return nil }
        if let python { return python }
        let outcome = try CommandRunner().run(["python3", "-c", "import sys; print(sys.executable)"])
        let path = outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard outcome.succeeded, path.hasPrefix("/") else {
            printErr("nftproxy-bench e2e: no python3 found; the json.load reference rows are left out")
            return nil
        }
        return path
    }

    static func loadAverage() -> String {
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    static func makeTemporaryDirectory() throws -> String {
        var template = Array("/tmp/nftproxy-e2e.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw BenchError("cannot create a directory under /tmp: \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }
}

/// The measurements of `e2e`, row by row.
struct EndToEndRunner {
    let nftproxy: String
    let python: String?
    let directory: String
    let endpoints: Int
    let nodes: Int
    let seed: UInt64
    let repeats: Int
    let timeout: Double
    /// Whether the objects carry the traffic policies of `Workload.trafficPolicies`.
    let trafficPolicies: Bool
    let memoryLimitKiB: Int?
    let keepFiles: Bool
    /// What every dump and apply is given besides its input: the node, and the counters choice.
    let nodeArguments: [String]

    private(set) var inputs: [EndToEndResult.Input] = []
    private(set) var rows: [EndToEndResult.Row] = []
    /// Steps of a format that timed out or grew too big at some N: not tried at larger N.
    private var givenUp: [String: String] = [:]

    init(nftproxy: String, python: String?, directory: String, endpoints: Int, nodes: Int, seed: UInt64,
         repeats: Int, timeout: Double, trafficPolicies: Bool = false, memoryLimitKiB: Int?, keepFiles: Bool,
         nodeArguments: [String]) {
        self.nftproxy = nftproxy; self.python = python; self.directory = directory; self.endpoints = endpoints
        self.nodes = nodes; self.seed = seed; self.repeats = repeats; self.timeout = timeout
        self.trafficPolicies = trafficPolicies
        self.memoryLimitKiB = memoryLimitKiB; self.keepFiles = keepFiles; self.nodeArguments = nodeArguments
    }

    /// The node the benchmark programs, as in the engine rows.
    static let nodeArguments = ["--node-name", "node-0", "--cluster-cidr", Workload.clusterCIDR.description]

    mutating func skip(format: RealisticCluster.Format, services: Int, note: String) {
        for step in EndToEndResult.Step.allCases where step != .pythonJSONLoad || format == .json {
            rows.append(.init(format: format, services: services, step: step, samples: [], outcome: .notRun, note: note))
        }
    }

    mutating func measure(format: RealisticCluster.Format, services: Int) throws {
        let workload = Workload(services: services, endpoints: endpoints, nodes: nodes, trafficPolicies: trafficPolicies)
        let base = "\(directory)/cluster-\(services)x\(endpoints)"
        let file = "\(base).\(format.rawValue)", moved = "\(base)-moved.\(format.rawValue)"
        printErr("== \(format.rawValue.uppercased()), \(Format.count(services)) services x \(endpoints) endpoints")
        let start = Clock.now()
        let bytes = try Self.write(RealisticCluster(workload: workload, seed: seed), format, to: file)
        let movedBytes = try Self.write(RealisticCluster(workload: workload, seed: seed, moved: true), format, to: moved)
        let generateSeconds = Clock.now() - start
        inputs.append(.init(format: format, services: services, bytes: bytes, movedBytes: movedBytes,
                            generateSeconds: generateSeconds))
        printErr("   generated \(file) (\(Format.bytes(bytes))) and its moved variant in \(Format.duration(generateSeconds))")
        defer {
            if !keepFiles {
                try? FileManager.default.removeItem(atPath: file)
                try? FileManager.default.removeItem(atPath: moved)
            }
        }

        var steps: [EndToEndResult.Step] = [.dump, .apply, .applyMoved]
        if format == .json && python != nil { steps.insert(.pythonJSONLoad, at: 0) }
        var samples: [EndToEndResult.Step: [ProcessSample]] = [:]
        var operations: [EndToEndResult.Step: [Int]] = [:]
        var stopped: [EndToEndResult.Step: (EndToEndResult.Outcome, String?)] = [:]
        for step in steps {
            if let note = givenUp["\(format.rawValue) \(step.rawValue)"] { stopped[step] = (.notRun, note) }
        }
        if stopped[.apply] != nil && stopped[.applyMoved] == nil {
            stopped[.applyMoved] = (.notRun, "apply from scratch not run")
        }

        for repetition in 1...repeats {
            for step in steps where stopped[step] == nil {
                if step == .pythonJSONLoad, let python {
                    let sample = try run([python, "-c", "import json, sys; json.load(open(sys.argv[1]))", file], "python")
                    record(sample, step, repetition, &samples, &stopped)
                }
                if step == .dump {
                    let sample = try run([nftproxy, "dump", "-f", file] + nodeArguments, "dump")
                    record(sample, step, repetition, &samples, &stopped)
                }
            }
            guard stopped[.apply] == nil else { continue }
            // Both applies in one namespace, new for each repetition.
            let namespace = try PrivateNamespace()
            defer { namespace.close() }
            let scratch = try run([nftproxy, "apply", "-f", file, "--netns", namespace.name] + nodeArguments, "apply")
            record(scratch, .apply, repetition, &samples, &stopped)
            if let count = committedOperations("apply") { operations[.apply, default: []].append(count) }
            guard scratch.succeeded else {
                if samples[.applyMoved] == nil {
                    stopped[.applyMoved] = stopped[.applyMoved] ?? (.notRun, "apply from scratch did not finish")
                }
                continue
            }
            if stopped[.applyMoved] == nil {
                let change = try run([nftproxy, "apply", "-f", moved, "--netns", namespace.name] + nodeArguments, "apply-moved")
                record(change, .applyMoved, repetition, &samples, &stopped)
                if let count = committedOperations("apply-moved") { operations[.applyMoved, default: []].append(count) }
            }
        }

        for step in steps {
            var (outcome, note) = stopped[step] ?? (.ok, nil)
            if outcome == .ok && samples[step] == nil { (outcome, note) = (.notRun, nil) }
            rows.append(.init(format: format, services: services, step: step, samples: samples[step] ?? [],
                              operations: operations[step] ?? [], outcome: outcome, note: note))
            if outcome == .timedOut || outcome == .memoryExceeded {
                givenUp["\(format.rawValue) \(step.rawValue)"] = "\(outcome.rawValue) at \(Format.count(services))"
            }
        }
    }

    private func record(_ sample: ProcessSample, _ step: EndToEndResult.Step, _ repetition: Int,
                        _ samples: inout [EndToEndResult.Step: [ProcessSample]],
                        _ stopped: inout [EndToEndResult.Step: (EndToEndResult.Outcome, String?)]) {
        samples[step, default: []].append(sample)
        let verdict: String
        if sample.timedOut {
            stopped[step] = (.timedOut, "\(Int(timeout)) s")
            verdict = "TIMED OUT after \(Int(timeout)) s"
        } else if sample.memoryExceeded {
            stopped[step] = (.memoryExceeded, memoryLimitKiB.map { "\(Format.count($0 / 1024)) MiB" })
            verdict = "KILLED above the memory limit"
        } else if !sample.succeeded {
            let reason = sample.status.map { "exit status \($0)" } ?? "signal \(sample.signal ?? 0)"
            stopped[step] = (.failed, reason)
            verdict = "FAILED (\(reason)): \(sample.error ?? "")"
        } else {
            verdict = "ok"
        }
        printErr("   \(repetition)/\(repeats) \(step.rawValue): \(Format.duration(sample.seconds)) "
            + "(user \(Format.duration(sample.cpu.user)), sys \(Format.duration(sample.cpu.system))), "
            + "peak RSS \(sample.maxRSSKiB / 1024) MiB: \(verdict)")
    }

    private func run(_ arguments: [String], _ name: String) throws -> ProcessSample {
        try MeasuredProcess(arguments: arguments, stdoutPath: "\(directory)/\(name).out", stderrPath: "\(directory)/\(name).err",
                            timeout: timeout, memoryLimitKiB: memoryLimitKiB).run()
    }

    /// "nftproxy: committed N operations (...)" or "... nothing committed" from an apply's stdout.
    private func committedOperations(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "\(directory)/\(name).out", encoding: .utf8) else { return nil }
        if text.contains("nothing committed") { return 0 }
        guard let range = text.range(of: "committed ") else { return nil }
        return Int(text[range.upperBound...].prefix { $0.isNumber })
    }

    /// Writes a generated List to `path`; returns its size.
    private static func write(_ cluster: RealisticCluster, _ format: RealisticCluster.Format, to path: String) throws -> Int {
        guard FileManager.default.createFile(atPath: path, contents: nil),
              let handle = FileHandle(forWritingAtPath: path) else {
            throw BenchError("cannot create \(path)")
        }
        defer { try? handle.close() }
        var bytes = 0
        cluster.render(format) { chunk in
            let data = Data(chunk.utf8)
            bytes += data.count
            handle.write(data)
        }
        return bytes
    }
}
