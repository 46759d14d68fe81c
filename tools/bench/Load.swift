import ArgumentParser
import Foundation

/// What `nftproxy-bench load` measured, as JSON.
struct LoadResult: Codable {
    var label: String
    var file: String
    var bytes: Int
    var services: Int?
    var endpoints: Int?
    /// Nodes the endpoints are spread over (0: no node names), when given.
    var nodes: Int?
    var namespace: String
    /// Wall time of `ip netns exec NS nft -f FILE`, CLOCK_MONOTONIC around the command.
    var seconds: Double
    /// CPU time of the command (RUSAGE_CHILDREN): user is nft parsing and evaluating the
    /// script, system is mostly the kernel processing the batch.
    var cpu: CPUTimes
    var timedOut: Bool
    var timeoutSeconds: Double
    var status: Int32
    var error: String?
}

/// `nftproxy-bench load`: times `nft -f FILE` in a network namespace (the baselines).
struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time `ip netns exec NS nft -f FILE` in an empty network namespace.",
        discussion: """
            Without --netns a namespace nftp-bench-<pid>-<random> is created and deleted afterwards. \
            A load that outlives --timeout gets SIGTERM (SIGKILL a second later) and is reported as \
            timed out; the kernel then aborts the transaction.
            """)

    @Option(help: "The nft script to load.")
    var file: String

    @Option(help: "Name of the measurement in the report (a, b, ...).")
    var label = "load"

    @Option(help: "Services in the file (for the report).")
    var services: Int?

    @Option(help: "Endpoints per service in the file (for the report).")
    var endpoints: Int?

    @Option(help: "Nodes the endpoints of the file are spread over (for the report).")
    var nodes: Int?

    @Option(help: "Seconds after which nft is killed and the load reported as timed out.")
    var timeout: Double = 300

    @Option(help: "Use this existing, empty network namespace (created by the caller) instead of a new one.")
    var netns: String?

    func run() throws {
        guard let size = (try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int else {
            throw ValidationError("cannot read \(file)")
        }
        let namespace = try netns.map { try PrivateNamespace(existing: $0) } ?? PrivateNamespace()
        defer { namespace.close() }

        let childrenBefore = CPUTimes.of(.children)
        let start = Clock.now()
        let outcome = try namespace.exec(["nft", "-f", file], timeout: .milliseconds(Int64(timeout * 1000)))
        let seconds = Clock.now() - start
        let cpu = CPUTimes.of(.children) - childrenBefore

        let error = outcome.succeeded ? nil : String(outcome.description.prefix(2000))
        let result = LoadResult(label: label, file: file, bytes: size, services: services, endpoints: endpoints,
                                nodes: nodes, namespace: namespace.name, seconds: seconds, cpu: cpu, timedOut: outcome.timedOut,
                                timeoutSeconds: timeout, status: outcome.status, error: error)
        writeOut(jsonText(result) + "\n")
        let verdict = outcome.timedOut ? "timed out (> \(Int(timeout)) s)" : error.map { "FAILED: \($0)" } ?? "ok"
        printErr("nftproxy-bench load \(label): nft -f \(file) (\(Format.bytes(size))) in \(Format.duration(seconds)) "
            + "(nft user \(Format.duration(cpu.user)), sys \(Format.duration(cpu.system))): \(verdict)")
        if error != nil && !outcome.timedOut { throw ExitCode.failure }
    }
}
