import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The outcome of one finished (or timed-out) command.
public struct CommandResult: Sendable, CustomStringConvertible {
    /// The argument vector as given (argv[0] unresolved).
    public let arguments: [String]
    /// Exit status for a normal exit; `128 + signal` when the process was killed by a signal.
    public let status: Int32
    /// True when the process ended through a signal (including the runner's own kill on timeout).
    public let signaled: Bool
    /// True when the runner had to kill the command because it exceeded its timeout.
    public let timedOut: Bool
    public let stdout: String
    public let stderr: String
    /// Wall-clock time from launch to exit.
    public let duration: Duration

    public init(arguments: [String], status: Int32, signaled: Bool, timedOut: Bool,
                stdout: String, stderr: String, duration: Duration) {
        self.arguments = arguments; self.status = status; self.signaled = signaled
        self.timedOut = timedOut; self.stdout = stdout; self.stderr = stderr; self.duration = duration
    }

    /// Exited normally with status 0 within its timeout.
    public var succeeded: Bool { status == 0 && !signaled && !timedOut }

    /// stdout split into lines, without the trailing empty line.
    public var lines: [String] {
        stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
    }

    /// Returns self if the command succeeded, throws `CommandError.failed` otherwise.
    @discardableResult
    public func check() throws -> CommandResult {
        guard succeeded else { throw CommandError.failed(self) }
        return self
    }

    public var description: String {
        var s = "`\(arguments.joined(separator: " "))` "
        if timedOut { s += "timed out after \(duration)" }
        else if signaled { s += "killed by signal \(status - 128)" }
        else { s += "exited with status \(status)" }
        let err = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        if !err.isEmpty { s += ": \(err)" }
        return s
    }
}

/// Errors of `CommandRunner` and of `CommandResult.check()`.
public enum CommandError: Error, CustomStringConvertible, Sendable {
    /// The executable could not be found or started.
    case launchFailed(arguments: [String], reason: String)
    /// The command ran but did not succeed.
    case failed(CommandResult)

    public var description: String {
        switch self {
        case .launchFailed(let args, let reason):
            return "cannot run `\(args.joined(separator: " "))`: \(reason)"
        case .failed(let result):
            return result.description
        }
    }
}

/// Runs commands to completion with captured output and a timeout (a small wrapper
/// around Foundation's `Process`). A value type: copy it freely between threads.
public struct CommandRunner: Sendable {
    /// Timeout used when `run` is not given one.
    public var defaultTimeout: Duration
    /// Extra environment variables for every command (merged over the current environment).
    public var environment: [String: String]

    public init(defaultTimeout: Duration = .seconds(30), environment: [String: String] = [:]) {
        self.defaultTimeout = defaultTimeout
        self.environment = environment
    }

    /// Runs `arguments` (argv[0] looked up in PATH, then /usr/sbin, /sbin, /usr/bin, /bin),
    /// feeding `input` on stdin, and waits for it to exit.
    ///
    /// Does not throw for a non-zero exit status: inspect the result or call `check()`.
    /// Throws `CommandError.launchFailed` if the command cannot be started. When the
    /// timeout expires the process gets SIGTERM, then SIGKILL one second later, and the
    /// result has `timedOut == true`.
    ///
    /// After `Topology.installSignalCleanup()`, a call made while the signal cleanup runs
    /// waits for the process to end instead of returning.
    public func run(_ arguments: [String], input: String? = nil, timeout: Duration? = nil) throws -> CommandResult {
        Termination.shared.parkIfTerminating()
        defer { Termination.shared.parkIfTerminating() }
        return try execute(arguments, input: input, timeout: timeout)
    }

    /// `run` without the signal-cleanup parking: for the library's own use, also while it
    /// holds its locks and on the cleanup thread.
    func execute(_ arguments: [String], input: String? = nil, timeout: Duration? = nil) throws -> CommandResult {
        guard let first = arguments.first else {
            throw CommandError.launchFailed(arguments: arguments, reason: "empty argument list")
        }
        guard let executable = Self.resolveExecutable(first) else {
            throw CommandError.launchFailed(arguments: arguments, reason: "\(first): not found in PATH")
        }
        let limit = timeout ?? defaultTimeout
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(arguments.dropFirst())
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let outPipe = Pipe(), errPipe = Pipe()
        let inPipe: Pipe? = input == nil ? nil : Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = inPipe ?? FileHandle.nullDevice

        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        let clock = ContinuousClock()
        let start = clock.now
        do {
            try process.run()
        } catch {
            throw CommandError.launchFailed(arguments: arguments, reason: "\(error)")
        }
        // Our copies of the child's ends must be closed, or we would never see EOF.
        try? outPipe.fileHandleForWriting.close()
        try? errPipe.fileHandleForWriting.close()
        try? inPipe?.fileHandleForReading.close()

        let deadline = start.advanced(by: limit)
        var io = PipeIO(stdout: outPipe.fileHandleForReading.fileDescriptor,
                        stderr: errPipe.fileHandleForReading.fileDescriptor,
                        stdin: inPipe?.fileHandleForWriting,
                        input: Array((input ?? "").utf8))
        var timedOut = !io.pump(until: deadline, clock: clock)
        if timedOut {
            Self.terminate(process, grace: .seconds(1), exited: exited)
            // Collect what is left, but never hang on a grandchild that keeps the pipes open.
            _ = io.pump(until: clock.now.advanced(by: .seconds(1)), clock: clock)
        }
        io.closeAll()
        try? outPipe.fileHandleForReading.close()
        try? errPipe.fileHandleForReading.close()

        // The pipes are closed; the process may still be running (it closed its outputs).
        if !timedOut {
            let remaining = max(deadline - clock.now, .zero)
            if exited.wait(timeout: .now() + remaining.timeInterval) == .timedOut {
                timedOut = true
                Self.terminate(process, grace: .seconds(1), exited: exited)
            }
        }
        let duration = clock.now - start
        let signaled = process.terminationReason == .uncaughtSignal
        let status = signaled ? 128 + process.terminationStatus : process.terminationStatus
        return CommandResult(arguments: arguments, status: status, signaled: signaled, timedOut: timedOut,
                             stdout: String(decoding: io.out, as: UTF8.self),
                             stderr: String(decoding: io.err, as: UTF8.self),
                             duration: duration)
    }

    /// `run` followed by `check()`: throws `CommandError.failed` unless the command succeeded.
    @discardableResult
    public func runChecked(_ arguments: [String], input: String? = nil, timeout: Duration? = nil) throws -> CommandResult {
        try run(arguments, input: input, timeout: timeout).check()
    }

    /// SIGTERM, then SIGKILL after `grace`, then wait for the exit to be reaped.
    static func terminate(_ process: Process, grace: Duration, exited: DispatchSemaphore) {
        guard process.isRunning else {
            _ = exited.wait(timeout: .now() + 2)
            return
        }
        let pid = process.processIdentifier
        kill(pid, SIGTERM)
        if exited.wait(timeout: .now() + grace.timeInterval) == .timedOut {
            kill(pid, SIGKILL)
            _ = exited.wait(timeout: .now() + 5)
        }
    }

    /// Finds an executable: a path containing "/" is used as is; otherwise PATH is searched,
    /// followed by the usual system directories (where `ip` lives).
    public static func resolveExecutable(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        for dir in dirs where !dir.isEmpty {
            let candidate = dir + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}

extension Duration {
    /// Seconds as a `TimeInterval` (for Dispatch and Foundation APIs).
    var timeInterval: TimeInterval {
        let c = components
        return TimeInterval(c.seconds) + TimeInterval(c.attoseconds) / 1e18
    }

    /// Milliseconds, rounded up, clamped to Int32 (for poll()).
    var pollMilliseconds: Int32 {
        if self <= .zero { return 0 }
        let c = components
        let ms = c.seconds * 1000 + (c.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: ms)
    }
}

/// Moves bytes between the parent and a child's stdin/stdout/stderr with poll(),
/// so that neither side can block the other regardless of output size.
struct PipeIO {
    private var outFD: Int32?
    private var errFD: Int32?
    /// The write end of the child's stdin; closed (through its FileHandle, never with a
    /// raw close(), so nothing closes a descriptor number twice) once all input is written.
    private var inHandle: FileHandle?
    private var input: [UInt8]
    private var written = 0
    var out: [UInt8] = []
    var err: [UInt8] = []

    init(stdout: Int32, stderr: Int32, stdin: FileHandle?, input: [UInt8]) {
        outFD = stdout; errFD = stderr; inHandle = stdin; self.input = input
        for fd in [stdout, stderr] + (stdin.map { [$0.fileDescriptor] } ?? []) {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        if input.isEmpty { closeStdin() }
    }

    private mutating func closeStdin() {
        try? inHandle?.close()
        inHandle = nil
    }

    /// Pumps until stdout and stderr reach EOF (returns true) or the deadline passes (false).
    mutating func pump(until deadline: ContinuousClock.Instant, clock: ContinuousClock) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while outFD != nil || errFD != nil {
            var fds: [pollfd] = []
            if let fd = outFD { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            if let fd = errFD { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            let inFD = inHandle?.fileDescriptor
            if let fd = inFD { fds.append(pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)) }
            let remaining = deadline - clock.now
            if remaining <= .zero { return false }
            let n = poll(&fds, nfds_t(fds.count), remaining.pollMilliseconds)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            for p in fds where p.revents != 0 {
                if p.fd == inFD {
                    let w = input.withUnsafeBytes { raw in
                        write(p.fd, raw.baseAddress! + written, raw.count - written)
                    }
                    if w > 0 { written += w }
                    if w < 0 && errno != EAGAIN && errno != EINTR { written = input.count }
                    if written >= input.count { closeStdin() }
                    continue
                }
                let r = read(p.fd, &buffer, buffer.count)
                if r > 0 {
                    if p.fd == outFD { out.append(contentsOf: buffer[0..<r]) } else { err.append(contentsOf: buffer[0..<r]) }
                } else if r == 0 || (errno != EAGAIN && errno != EINTR) {
                    if p.fd == outFD { outFD = nil } else { errFD = nil }
                }
            }
        }
        closeStdin()
        return true
    }

    /// Closes the stdin end if still open (stdout/stderr are owned by their FileHandles).
    mutating func closeAll() { closeStdin() }
}
