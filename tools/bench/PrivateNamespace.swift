#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Sandbox

/// A network namespace for kernel work, so that none ever happens in the machine's own.
///
/// `PrivateNamespace()` creates `nftp-bench-<pid>-<random>` with `ip netns add`;
/// `close()` (also run by `deinit`) empties and deletes it, and a SIGINT, SIGTERM or
/// SIGHUP deletes it before the process ends. `PrivateNamespace(existing:)` uses a
/// namespace the caller created (tools/benchmark.sh does, for the `nft -f` baselines):
/// it is emptied but left to its owner to delete.
final class PrivateNamespace {
    let name: String
    private let owned: Bool
    private var closed = false

    static let runner = CommandRunner(defaultTimeout: .seconds(120))

    init() throws {
        name = "nftp-bench-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        owned = true
        SignalCleanup.shared.register(name)
        do {
            try Self.runner.runChecked(["ip", "netns", "add", name])
        } catch {
            SignalCleanup.shared.unregister(name)
            throw error
        }
    }

    init(existing name: String) throws {
        guard FileManager.default.fileExists(atPath: "/run/netns/\(name)") else {
            throw BenchError("network namespace \(name) does not exist (create it with ip netns add)")
        }
        self.name = name
        owned = false
    }

    /// Runs a command inside the namespace.
    func exec(_ arguments: [String], timeout: Duration) throws -> CommandResult {
        try Self.runner.run(["ip", "netns", "exec", name] + arguments, timeout: timeout)
    }

    /// Empties the ruleset first: the kernel then frees the tables now, on this thread,
    /// instead of in the background while the next measurement runs. Then deletes the
    /// namespace if this process created it.
    func close() {
        guard !closed else { return }
        closed = true
        _ = try? exec(["nft", "flush", "ruleset"], timeout: .seconds(600))
        if owned {
            _ = try? Self.runner.run(["ip", "netns", "delete", name])
            SignalCleanup.shared.unregister(name)
        }
    }

    deinit { close() }
}

/// Deletes the namespaces this process created when SIGINT, SIGTERM or SIGHUP arrives,
/// then ends the process with that signal.
final class SignalCleanup: @unchecked Sendable {
    static let shared = SignalCleanup()
    private let lock = NSLock()
    private var names: Set<String> = []
    private var sources: [DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "nftproxy-bench.signal-cleanup")

    func register(_ name: String) {
        lock.lock(); defer { lock.unlock() }
        names.insert(name)
        guard sources.isEmpty else { return }
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { [unowned self] in self.terminate(sig) }
            source.resume()
            sources.append(source)
        }
    }

    func unregister(_ name: String) {
        lock.lock(); defer { lock.unlock() }
        names.remove(name)
    }

    private func terminate(_ sig: Int32) {
        lock.lock()
        let pending = names.sorted()
        lock.unlock()
        for name in pending {
            // Not CommandRunner: the main thread may be inside it right now.
            Self.spawnAndWait(["/usr/bin/env", "ip", "netns", "delete", name])
        }
        if !pending.isEmpty { printErr("nftproxy-bench: signal \(sig); deleted \(pending.joined(separator: ", "))") }
        signal(sig, SIG_DFL)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, sig)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        raise(sig)
        _exit(128 + sig)
    }

    private static func spawnAndWait(_ arguments: [String]) {
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        if posix_spawn(&pid, arguments[0], nil, nil, &argv, environ) == 0 {
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
