import Foundation

/// What `nftproxy-bench daemon` measured.
struct DaemonResult: Codable {
    var date: String
    var loadBefore: String
    var loadAfter = ""
    var nftproxy: String
    var endpoints: Int
    var nodes: Int
    var repeats: Int
    /// `--endpoint-counters` as passed to the daemons; nil: not passed (the daemon's default).
    var endpointCounters: Bool?
    var rows: [Row] = []

    struct Memory: Codable {
        var residentKiB: Int
        var peakKiB: Int
    }

    /// One daemon from spawn to healthy.
    struct Start: Codable {
        /// posix_spawn to the first 200 of /healthz.
        var seconds: Double
        /// The daemon's CPU time (user + system) by then.
        var cpuSeconds: Double?
        var memory: Memory?
        /// nftproxy_kernel_operations_total when healthy: what its first sync committed.
        var kernelOperations: Int?
        /// Seconds after spawn, from the daemon's log: its "starting" line (configuration read,
        /// about to list), each list complete, the first sync committed.
        var daemonStarting: Double?
        var servicesListed: Double?
        var slicesListed: Double?
        var firstSyncCommitted: Double?
        /// The first sync's own duration (its log line), and how it went.
        var firstSyncMilliseconds: Double?
        var firstSyncPath: String?
        var firstSyncReason: String?
        /// The resident set --settle seconds after it became healthy, before any /metrics scrape
        /// (first repetition only).
        var settledMemory: Memory?
    }

    struct Latency: Codable {
        var changes: Int
        /// Stand-in stored the change → the kernel holds the new element.
        var eventToKernel: Summary
        var eventToKernelSeconds: [Double]
        /// How long the stand-in's write took (not part of the latency).
        var standInWrite: Summary
        var syncs: Int
        var incrementalSyncs: Int
        /// The daemon's sync durations for these changes (its log).
        var syncDurationMilliseconds: Summary
        var networkProgramming: HistogramDifference?
    }

    struct Row: Codable {
        var services: Int
        var standInLoadSeconds = 0.0
        var scratch: [Start] = []
        var restart: [Start] = []
        /// --settle seconds after healthy, before any /metrics scrape.
        var settledMemory: Memory?
        /// Right after the first /metrics scrape, which followed the settle time.
        var steadyMemory: Memory?
        var memoryAfterChanges: Memory?
        var latency: Latency?
        /// With endpoint counters: whole /metrics scrapes (GET to the last byte) once every
        /// pair's counting elements exist, and how many endpoints each exported.
        var scrapeSeconds: [Double] = []
        var scrapeEndpoints: Int?
        /// Whole /metrics scrapes each right after a single-endpoint change was programmed:
        /// they compute the series of the new map before reading.
        var scrapeAfterSyncSeconds: [Double] = []
        /// The resident set after those scrapes.
        var memoryAfterScrapes: Memory?

        init(services: Int) { self.services = services }
    }

    var markdown: String {
        func starts(_ list: [Start]) -> String {
            let summary = Summary(list.map(\.seconds))
            let cpu = Summary(list.compactMap(\.cpuSeconds))
            return "**\(Format.duration(summary.median))** (\(Format.duration(summary.min))–\(Format.duration(summary.max))), "
                + "CPU \(Format.duration(cpu.median))"
        }
        func phases(_ list: [Start]) -> String {
            func median(_ path: KeyPath<Start, Double?>) -> String { Format.duration(Summary(list.compactMap { $0[keyPath: path] }).median) }
            let sync = Summary(list.compactMap(\.firstSyncMilliseconds)).median / 1000
            return "\(median(\.daemonStarting)) / \(median(\.servicesListed)) / \(median(\.slicesListed)) / \(Format.duration(sync)) / \(median(\.firstSyncCommitted))"
        }
        var lines = [
            "| services × endpoints | from scratch to programmed | daemon starting / lists complete (services / slices) / first sync / committed, from scratch | restart (SIGKILL, new daemon adopts) | the same for the restart | operations the restart committed | RSS when healthy (peak) from scratch |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in rows {
            let operations = Set(row.restart.compactMap(\.kernelOperations)).sorted().map(String.init).joined(separator: ", ")
            let healthy = row.scratch.compactMap(\.memory?.residentKiB)
            let peak = healthy.isEmpty ? "–" : "\(Int(Summary(healthy.map(Double.init)).median) / 1024) MiB ("
                + (row.scratch.compactMap(\.memory?.peakKiB).max().map { "\($0 / 1024) MiB" } ?? "–") + ")"
            lines.append("| \(Format.count(row.services)) × \(endpoints) | \(starts(row.scratch)) | \(phases(row.scratch)) | "
                         + "\(starts(row.restart)) | \(phases(row.restart)) | \(operations) | \(peak) |")
        }
        for row in rows {
            if let memory = row.steadyMemory {
                lines.append("")
                lines.append("Steady RSS at \(Format.count(row.services)) × \(endpoints): "
                             + (row.settledMemory.map { "\($0.residentKiB / 1024) MiB after the settle time; " } ?? "")
                             + "after a /metrics scrape \(memory.residentKiB / 1024) MiB "
                             + "(peak \(memory.peakKiB / 1024) MiB)"
                             + (row.memoryAfterChanges.map { "; after the changes \($0.residentKiB / 1024) MiB" } ?? ""))
            }
            if !row.scrapeSeconds.isEmpty {
                let scrapes = Summary(row.scrapeSeconds)
                lines.append("/metrics scrape at \(Format.count(row.services)) × \(endpoints), every pair counted, "
                             + "\(row.scrapeEndpoints.map(Format.count) ?? "?") endpoints exported: median "
                             + "**\(Format.duration(scrapes.median))** (\(Format.duration(scrapes.min))–\(Format.duration(scrapes.max)), "
                             + "\(row.scrapeSeconds.count) scrapes)"
                             + (row.scrapeAfterSyncSeconds.isEmpty ? "" : "; each right after a sync: "
                                + row.scrapeAfterSyncSeconds.map { Format.duration($0) }.joined(separator: ", "))
                             + (row.memoryAfterScrapes.map { "; RSS after them \($0.residentKiB / 1024) MiB (peak \($0.peakKiB / 1024) MiB)" } ?? ""))
            }
            if let latency = row.latency {
                let e = latency.eventToKernel
                lines.append("Event to kernel at \(Format.count(row.services)) services, \(latency.changes) changes: "
                             + "p50 \(Format.duration(e.median)), p95 \(Format.duration(e.p95)), "
                             + "p99 \(Format.duration(Summary.quantile(0.99, of: latency.eventToKernelSeconds))), "
                             + "max \(Format.duration(e.max)); syncs \(latency.syncs) (\(latency.incrementalSyncs) incremental), "
                             + "sync duration median \(String(format: "%.2f", latency.syncDurationMilliseconds.median)) ms; "
                             + "stand-in write median \(Format.duration(latency.standInWrite.median))")
                if let histogram = latency.networkProgramming {
                    lines.append("kubeproxy_network_programming_duration_seconds over the changes: \(histogram.text)")
                }
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension Summary {
    /// The nearest-rank quantile `q` of `values`.
    static func quantile(_ q: Double, of values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((q * Double(sorted.count)).rounded(.up))
        return sorted[Swift.max(0, Swift.min(sorted.count - 1, rank - 1))]
    }
}

/// The change of one Prometheus histogram between two scrapes.
struct HistogramDifference: Codable {
    /// (upper bound in seconds, observations at or below it), cumulative, as `_bucket{le}` counts.
    var buckets: [Double: Int]
    var count: Int
    var sum: Double

    /// The smallest bucket bound at or below which at least `q` of the observations lie.
    func quantileBound(_ q: Double) -> Double? {
        let needed = Double(count) * q
        return buckets.keys.sorted().first { Double(buckets[$0] ?? 0) >= needed }
    }

    var text: String {
        guard count > 0 else { return "no observations" }
        let p50 = quantileBound(0.5).map { "≤ " + Format.duration($0) } ?? "above the last bucket"
        let p99 = quantileBound(0.99).map { "≤ " + Format.duration($0) } ?? "above the last bucket"
        let low = buckets.keys.sorted().prefix(4).map { "≤ \(Format.duration($0)): \(buckets[$0] ?? 0)" }
        return "\(count) observations, mean \(Format.duration(sum / Double(count))), p50 \(p50), p99 \(p99) (\(low.joined(separator: ", ")))"
    }
}

/// Reads values out of Prometheus text.
enum PrometheusText {
    /// The value of an unlabelled sample `name`.
    static func value(of name: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// The samples of histogram `name`: buckets by `le`, count and sum.
    static func histogram(_ name: String, in text: String) -> (buckets: [Double: Int], count: Int, sum: Double) {
        var buckets: [Double: Int] = [:]
        var count = 0, sum = 0.0
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let parts = line.split(separator: " ")
            guard parts.count >= 2, let value = Double(parts[parts.count - 1]) else { continue }
            let series = String(parts[0])
            if series.hasPrefix(name + "_bucket{"), let range = series.range(of: "le=\""),
               let end = series[range.upperBound...].firstIndex(of: "\"") {
                let bound = String(series[range.upperBound..<end])
                if let le = Double(bound) { buckets[le] = Int(value) }
            } else if series == name + "_count" {
                count = Int(value)
            } else if series == name + "_sum" {
                sum = value
            }
        }
        return (buckets, count, sum)
    }

    static func histogramDifference(_ name: String, before: String, after: String) -> HistogramDifference {
        let old = histogram(name, in: before), new = histogram(name, in: after)
        var buckets: [Double: Int] = [:]
        for (bound, value) in new.buckets { buckets[bound] = value - (old.buckets[bound] ?? 0) }
        return HistogramDifference(buckets: buckets, count: new.count - old.count, sum: new.sum - old.sum)
    }
}
