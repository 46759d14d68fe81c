#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// What one whole process cost, start to exit: wall time on CLOCK_MONOTONIC from just
/// before `posix_spawn` to the moment it exited, and its own CPU time and peak resident
/// set from `wait4`'s rusage (`ru_maxrss`, KiB).
struct ProcessSample: Codable {
    var seconds: Double
    var cpu: CPUTimes
    var maxRSSKiB: Int
    /// Exit status; nil when a signal ended it.
    var status: Int32?
    var signal: Int32?
    /// Killed by us after the time limit.
    var timedOut: Bool
    /// Killed by us when its resident set grew past the memory limit.
    var memoryExceeded: Bool
    /// The end of its stderr, when it failed.
    var error: String?

    var succeeded: Bool { status == 0 && !timedOut && !memoryExceeded }
}

/// Runs one program with stdin from /dev/null and stdout and stderr into files, waits
/// for it, and measures it (`ProcessSample`).
///
/// A watchdog thread ends it when it outlives `timeout` (SIGTERM, SIGKILL two seconds
/// later) or when its resident set (VmRSS, sampled every 20 ms) passes `memoryLimitKiB`
/// (SIGKILL), so that one run can neither hang the benchmark nor exhaust the machine.
/// The process is reaped only after the watchdog has stopped, so its pid cannot be
/// reused while the watchdog may still signal it.
struct MeasuredProcess {
    var arguments: [String]
    var stdoutPath: String
    var stderrPath: String
    var timeout: Double
    var memoryLimitKiB: Int?

    func run() throws -> ProcessSample {
        guard let executable = arguments.first, executable.hasPrefix("/") else {
            throw BenchError("MeasuredProcess needs an absolute executable path, got \(arguments.first ?? "nothing")")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        guard !argv.dropLast().contains(where: { $0 == nil }) else { throw BenchError("out of memory for argv") }

        var pid: pid_t = 0
        let start = Clock.now()
        let spawned = posix_spawn(&pid, executable, &actions, nil, &argv, environ)
        guard spawned == 0 else {
            throw BenchError("cannot start \(executable): \(String(cString: strerror(spawned)))")
        }
        let watchdog = Watchdog(pid: pid, deadline: start + timeout, memoryLimitKiB: memoryLimitKiB)
        let thread = Thread { watchdog.watch() }
        thread.start()

        // Wait for the exit without reaping, so the pid stays ours until the watchdog is done.
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 {
            guard errno == EINTR else { throw BenchError("waitid(\(pid)): \(String(cString: strerror(errno)))") }
        }
        let seconds = Clock.now() - start
        let verdict = watchdog.stop()

        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else { throw BenchError("wait4(\(pid)): \(String(cString: strerror(errno)))") }
        }
        func time(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import.
        let exited = status & 0x7f == 0
        var sample = ProcessSample(
            seconds: seconds, cpu: CPUTimes(user: time(usage.ru_utime), system: time(usage.ru_stime)),
            maxRSSKiB: Int(usage.ru_maxrss), status: exited ? (status >> 8) & 0xff : nil,
            signal: exited ? nil : status & 0x7f, timedOut: verdict.timedOut, memoryExceeded: verdict.memoryExceeded,
            error: nil)
        if !sample.succeeded {
            let text = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            sample.error = String(text.suffix(1500))
        }
        return sample
    }
}

/// Ends a process that runs too long or grows too big (see `MeasuredProcess`).
private final class Watchdog: @unchecked Sendable {
    private let pid: pid_t
    private let deadline: Double
    private let memoryLimitKiB: Int?
    private let lock = NSCondition()
    private var stopped = false
    private var finished = false
    private var timedOut = false
    private var memoryExceeded = false

    init(pid: pid_t, deadline: Double, memoryLimitKiB: Int?) {
        self.pid = pid
        self.deadline = deadline
        self.memoryLimitKiB = memoryLimitKiB
    }

    func watch() {
        var terminatedAt: Double?
        lock.lock()
        defer {
            finished = true
            lock.broadcast()
            lock.unlock()
        }
        while !stopped {
            let now = Clock.now()
            if let memoryLimitKiB, !memoryExceeded, let rss = residentKiB(), rss > memoryLimitKiB {
                memoryExceeded = true
                kill(pid, SIGKILL)
            }
            if now >= deadline, terminatedAt == nil {
                timedOut = true
                terminatedAt = now
                kill(pid, SIGTERM)
            }
            if let terminatedAt, now >= terminatedAt + 2 {
                kill(pid, SIGKILL)
            }
            _ = lock.wait(until: Date(timeIntervalSinceNow: 0.02))
        }
    }

    /// Stops watching (the process has exited) and says why it ended, if we ended it.
    func stop() -> (timedOut: Bool, memoryExceeded: Bool) {
        lock.lock()
        defer { lock.unlock() }
        stopped = true
        lock.broadcast()
        while !finished { lock.wait() }
        return (timedOut, memoryExceeded)
    }

    /// VmRSS of the process, KiB.
    private func residentKiB() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int($0) }
        }
        return nil
    }
}
