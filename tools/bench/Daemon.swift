import Sandbox
import ArgumentParser
import Foundation
import ServiceModel

/// `nftproxy-bench daemon`: whole `nftproxy run` processes against the stand-in API server.
struct DaemonBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Time `nftproxy run` against the stand-in API server: start to programmed, restart, event to kernel, RSS.",
        discussion: """
            The stand-in API server runs in this process over HTTPS and serves the realistic objects \
            of `objects` (managedFields, annotations, status), listed in pages of 500 as the daemon \
            asks. For each number of services, --repeats times, in a network namespace \
            nftp-bench-<pid>-<random> created for the repetition and deleted after it: `nftproxy run` \
            from scratch, timed from posix_spawn until /healthz answers 200 (it does once the first \
            full sync is committed), then SIGKILL and a new `nftproxy run` that adopts the kernel's \
            state, timed the same way. In the first repetition of each number it also measures the \
            resident set after --settle seconds; at --latency-services it then makes --changes single-endpoint changes one \
            after the other and times each from the moment the stand-in stored it until the kernel \
            holds the new endpoint (an NFT_MSG_GETSETELEM of the element polled every 0.1 ms), and \
            reads kubeproxy_network_programming_duration_seconds before and after. JSON on stdout, a \
            summary on stderr.
            """)

    @Option(help: "Numbers of services, comma-separated.")
    var services = "10000,50000"

    @Option(help: "Ready endpoints per service.")
    var endpoints = 10

    @Option(help: "Spread the endpoints over this many nodes; the daemon programs node-0.")
    var nodes = 1000

    @Option(help: "Start and restart measurements per number of services.")
    var repeats = 3

    @Option(help: "Number of services at which the latency and RSS rows are measured (0: none).")
    var latencyServices = 10000

    @Option(help: "Single-endpoint changes of the latency row.")
    var changes = 100

    @Option(help: "Passed to each `nftproxy run` as --log-level (debug: each scrape logs its read and render times).")
    var logLevel = "info"

    @Option(help: "Whole /metrics scrapes timed at --latency-services once every pair is counted (0: none).")
    var scrapes = 5

    @Option(help: "Seconds to wait after the first sync before reading the resident set.")
    var settle: Double = 5

    @Option(help: "Seconds a daemon may take to become healthy.")
    var timeout: Double = 300

    @Option(help: "The nftproxy executable (default: the one built next to nftproxy-bench).")
    var nftproxy: String?

    @Option(help: ArgumentHelp("Passed to each `nftproxy run` as --endpoint-counters (default: not passed, the daemon's default).",
                               valueName: "true|false"))
    var endpointCounters: Bool?

    @Option(help: "Seed of the generated names, uids and times.")
    var seed: UInt64 = 1

    var serviceCounts: [Int] { services.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func validate() throws {
        guard !serviceCounts.isEmpty, serviceCounts.count == services.split(separator: ",").count else {
            throw ValidationError("--services: a comma-separated list of numbers, e.g. 10000,50000")
        }
        for count in serviceCounts {
            if let problem = Workload(services: count, endpoints: endpoints, nodes: nodes).validate() {
                throw ValidationError(problem)
            }
        }
        guard endpoints >= 2 else { throw ValidationError("--endpoints must be 2 or more") }
        guard repeats >= 1, changes >= 0, settle >= 0, timeout > 0 else {
            throw ValidationError("--repeats must be 1 or more, --changes and --settle 0 or more")
        }
    }

    func run() throws {
        let executable = try nftproxy ?? BuiltProducts.path(of: "nftproxy")
        let directory = try EndToEnd.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var result = DaemonResult(date: ISO8601DateFormatter().string(from: Date()), loadBefore: EndToEnd.loadAverage(),
                                  nftproxy: executable, endpoints: endpoints, nodes: nodes, repeats: repeats)
        result.endpointCounters = endpointCounters
        for count in serviceCounts.sorted() {
            let workload = Workload(services: count, endpoints: endpoints, nodes: nodes)
            var row = DaemonResult.Row(services: count)
            let populated = Clock.now()
            let cluster = try StandInCluster(cluster: RealisticCluster(workload: workload, seed: seed),
                                             directory: directory + "/\(count)")
            defer { cluster.shutdown() }
            row.standInLoadSeconds = Clock.now() - populated
            printErr("daemon: \(count) services in the stand-in (\(Format.duration(row.standInLoadSeconds)))")
            let runner = DaemonRunner(executable: executable, cluster: cluster, directory: directory + "/\(count)",
                                      timeout: timeout,
                                      extraArguments: (endpointCounters.map { ["--endpoint-counters", "\($0)"] } ?? [])
                                          + ["--endpoint-metrics-limit", "0", "--log-level", logLevel])
            for repetition in 0..<repeats {
                let namespace = try PrivateNamespace()
                defer { namespace.close() }
                let fresh = try runner.start(namespace: namespace.name, label: "scratch-\(repetition)",
                                             settle: repetition == 0 ? settle : nil)
                row.scratch.append(fresh.start)
                printErr("daemon: \(count) from scratch \(Format.duration(fresh.start.seconds))")
                if repetition == 0 {
                    row.settledMemory = fresh.start.settledMemory
                    row.steadyMemory = fresh.process.memory().map { DaemonResult.Memory(residentKiB: $0.residentKiB, peakKiB: $0.peakKiB) }
                    if count == latencyServices && changes > 0 {
                        row.latency = try runner.measureLatency(fresh.process, namespace: namespace.name,
                                                                changes: changes, workload: workload)
                        row.memoryAfterChanges = fresh.process.memory().map {
                            DaemonResult.Memory(residentKiB: $0.residentKiB, peakKiB: $0.peakKiB)
                        }
                    }
                }
                if repetition == 0 && count == latencyServices && endpointCounters != false && scrapes > 0 {
                    try CountingSets.fill(namespace: namespace.name)
                    for _ in 0..<scrapes {
                        let begun = Clock.now()
                        var lastByte = begun
                        let text = try fresh.process.metrics(timeoutSeconds: 120, received: { lastByte = Clock.now() })
                        row.scrapeSeconds.append(lastByte - begun)
                        row.scrapeEndpoints = text.components(separatedBy: "\nnftproxy_endpoint_connections_total{").count - 1
                    }
                    // Scrapes right after a sync, which compute the series of the new map first.
                    let probe = try KernelElementProbe(networkNamespace: namespace.name)
                    for index in 0..<min(scrapes, 3) {
                        _ = try runner.changeOneEndpoint(fresh.process, probe: probe,
                                                         service: (index * count) / 3 + 17, change: changes + index,
                                                         workload: workload)
                        let begun = Clock.now()
                        var lastByte = begun
                        _ = try fresh.process.metrics(timeoutSeconds: 120, received: { lastByte = Clock.now() })
                        row.scrapeAfterSyncSeconds.append(lastByte - begun)
                    }
                    row.memoryAfterScrapes = fresh.process.memory().map {
                        DaemonResult.Memory(residentKiB: $0.residentKiB, peakKiB: $0.peakKiB)
                    }
                    for line in fresh.process.logLines {
                        switch line["msg"] as? String {
                        case "endpoint metrics scraped":
                            printErr("daemon: scrape read \(line["readSeconds"] ?? "?") s, render \(line["renderSeconds"] ?? "?") s, "
                                     + "\(line["endpoints"] ?? "?") endpoints")
                        case "endpoint metrics series computed":
                            printErr("daemon: the first scrape after a sync computed \(line["series"] ?? "?") series in "
                                     + "\(line["seconds"] ?? "?") s (part of its read)")
                        default: break
                        }
                    }
                    printErr("daemon: \(count) /metrics scrape median \(Format.duration(Summary(row.scrapeSeconds).median)), "
                             + "\(row.scrapeEndpoints ?? 0) endpoints; right after a sync "
                             + row.scrapeAfterSyncSeconds.map { Format.duration($0) }.joined(separator: ", "))
                }
                fresh.process.kill(SIGKILL)
                let adopted = try runner.start(namespace: namespace.name, label: "restart-\(repetition)")
                row.restart.append(adopted.start)
                printErr("daemon: \(count) restart \(Format.duration(adopted.start.seconds)), "
                         + "\(adopted.start.kernelOperations.map(String.init) ?? "?") operations")
                adopted.process.kill(SIGTERM)
            }
            result.rows.append(row)
        }
        result.loadAfter = EndToEnd.loadAverage()
        writeOut(jsonText(result) + "\n")
        printErr("\n" + result.markdown)
    }
}

/// Starts daemons against one stand-in and measures them.
struct DaemonRunner {
    let executable: String
    let cluster: StandInCluster
    let directory: String
    let timeout: Double
    /// More arguments of `nftproxy run` (e.g. `--endpoint-counters false`).
    var extraArguments: [String] = []

    /// Starts `nftproxy run` in `namespace` and waits until it is healthy.
    /// With `settle`, the resident set is read that many seconds after it became healthy,
    /// before the first /metrics scrape (which reads the endpoint counters from the kernel).
    func start(namespace: String, label: String, settle: Double? = nil) throws -> (process: DaemonProcess, start: DaemonResult.Start) {
        let healthz = try HTTPProbe.freePort(), metrics = try HTTPProbe.freePort()
        let process = try DaemonProcess(arguments: [
            executable, "run", "--kubeconfig", cluster.kubeconfigPath, "--netns", namespace,
            "--node-name", StandInCluster.nodeName, "--cluster-cidr", "100.64.0.0/10",
            "--min-sync-period", "0", "--log-format", "json",
            "--healthz-bind-address", "127.0.0.1:\(healthz)", "--metrics-bind-address", "127.0.0.1:\(metrics)",
        ] + extraArguments, stderrPath: directory + "/\(label).log", healthzPort: healthz, metricsPort: metrics)
        let healthy = try process.waitUntilHealthy(timeout: timeout)
        var start = DaemonResult.Start(seconds: healthy - process.started, cpuSeconds: process.cpuSeconds())
        start.memory = process.memory().map { DaemonResult.Memory(residentKiB: $0.residentKiB, peakKiB: $0.peakKiB) }
        printErr("daemon: \(label) healthy after \(Format.duration(start.seconds))")
        if let settle {
            usleep(UInt32(settle * 1e6))
            start.settledMemory = process.memory().map { DaemonResult.Memory(residentKiB: $0.residentKiB, peakKiB: $0.peakKiB) }
        }
        // A scrape reads the endpoint counters from the kernel: slow at 50,000 services (the
        // set dumps are quadratic), so it gets a minute and its absence is not fatal.
        if let metricsText = try? process.metrics(timeoutSeconds: 60) {
            start.kernelOperations = PrometheusText.value(of: "nftproxy_kernel_operations_total", in: metricsText).map { Int($0) }
        }
        // The daemon's own account, from its log: when each list was complete, when the first
        // sync was committed and how long it took.
        let origin = process.startedDate
        for line in process.logLines {
            guard let message = line["msg"] as? String, let time = (line["ts"] as? String).flatMap(Self.parseTime) else {
                continue
            }
            let offset = time.timeIntervalSince(origin)
            if message == "starting", start.daemonStarting == nil {
                start.daemonStarting = offset
            } else if message == "listed", let resource = line["resource"] as? String {
                if resource == "services" { start.servicesListed = offset } else { start.slicesListed = offset }
            } else if message == "synced", start.firstSyncCommitted == nil {
                start.firstSyncCommitted = offset
                start.firstSyncMilliseconds = (line["durationMs"] as? String).flatMap(Double.init)
                start.firstSyncPath = line["path"] as? String
                start.firstSyncReason = line["reason"] as? String
            }
        }
        return (process, start)
    }

    static func parseTime(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    /// Replaces the first endpoint of `service` with the `change`th replacement address and
    /// waits until the kernel holds it: the seconds from the stand-in storing it to the kernel
    /// holding it, and the seconds the stand-in took to store it.
    func changeOneEndpoint(_ process: DaemonProcess, probe: KernelElementProbe, service: Int, change: Int,
                           workload: Workload) throws -> (latency: Double, write: Double) {
        let address = Workload.endpointIP(Workload.replacementBase + change)
        let clusterIP = Workload.clusterIP(service)
        // The new address is above every other endpoint's: the compiler numbers slots in
        // address order, so it takes the last slot.
        let slot = UInt32(workload.endpoints - 1)
        let writeStart = Clock.now()
        let stored = try cluster.replaceFirstEndpoint(ofService: service, with: address, generation: change)
        let deadline = stored + 10
        while true {
            if let (held, port) = try probe.backend(clusterIP: clusterIP, port: Workload.servicePort, slot: slot,
                                                    buckets: workload.endpoints),
               held == address, port == Workload.targetPort {
                return (Clock.now() - stored, stored - writeStart)
            }
            guard Clock.now() < deadline, process.isRunning else {
                throw BenchError("change \(change) (service \(service)) not in the kernel after 10 s:\n\(process.stderrTail)")
            }
            usleep(100)
        }
    }

    /// `changes` single-endpoint changes, one after the other, each timed from the stand-in
    /// storing it to the kernel holding it.
    func measureLatency(_ process: DaemonProcess, namespace: String, changes: Int,
                        workload: Workload) throws -> DaemonResult.Latency {
        let probe = try KernelElementProbe(networkNamespace: namespace)
        let before = try process.metrics(timeoutSeconds: 60)
        var latencies: [Double] = [], writes: [Double] = []
        let logLinesBefore = process.logLines.count
        for change in 0..<changes {
            let service = (change * workload.services) / changes + workload.services / (2 * changes)
            let (latency, write) = try changeOneEndpoint(process, probe: probe, service: service, change: change,
                                                         workload: workload)
            latencies.append(latency)
            writes.append(write)
            usleep(20_000)
        }
        let after = try process.metrics(timeoutSeconds: 60)
        let syncs = process.logLines.dropFirst(logLinesBefore).filter { $0["msg"] as? String == "synced" }
        let syncMilliseconds = syncs.compactMap { ($0["durationMs"] as? String).flatMap(Double.init) }
        return DaemonResult.Latency(
            changes: changes, eventToKernel: Summary(latencies), eventToKernelSeconds: latencies,
            standInWrite: Summary(writes), syncs: syncs.count,
            incrementalSyncs: syncs.filter { $0["path"] as? String == "incremental" }.count,
            syncDurationMilliseconds: Summary(syncMilliseconds),
            networkProgramming: PrometheusText.histogramDifference(
                "kubeproxy_network_programming_duration_seconds", before: before, after: after))
    }
}
