import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Errors of `BackgroundProcess`.
public enum BackgroundProcessError: Error, CustomStringConvertible, Sendable {
    case launchFailed(arguments: [String], reason: String)
    /// The expected line did not appear in time.
    case lineTimeout(arguments: [String], waitedFor: String, stdout: String, stderr: String)
    /// The process exited before printing the expected line.
    case exitedEarly(arguments: [String], status: Int32, stdout: String, stderr: String)

    public var description: String {
        switch self {
        case .launchFailed(let args, let reason):
            return "cannot start `\(args.joined(separator: " "))`: \(reason)"
        case .lineTimeout(let args, let what, let out, let err):
            return "`\(args.joined(separator: " "))` did not print \(what) in time; stdout: \(out.debugDescription), stderr: \(err.debugDescription)"
        case .exitedEarly(let args, let status, let out, let err):
            return "`\(args.joined(separator: " "))` exited (status \(status)) before it was ready; stdout: \(out.debugDescription), stderr: \(err.debugDescription)"
        }
    }
}

/// A long-running child process with captured output.
///
/// Its stdin is a pipe held open by this object: a child that treats end of file on
/// stdin as "the parent is gone" (like `nftproxy-echo serve --exit-with-stdin`) exits
/// even if this process dies without cleaning up. stdout and stderr are collected in
/// memory by a reader thread (the last 1 MiB of each is kept).
public final class BackgroundProcess: @unchecked Sendable {
    public let arguments: [String]
    /// Process id of the child (for `ip netns exec NS cmd`, the id of `cmd` itself, as
    /// `ip netns exec` replaces itself with the command).
    public let pid: Int32

    private let process: Process
    private let stdinPipe: Pipe
    private let exited = DispatchSemaphore(value: 0)
    private let output = OutputBuffer()

    /// Starts `arguments` (argv[0] is looked up like `CommandRunner` does).
    public init(_ arguments: [String], environment: [String: String] = [:]) throws {
        guard let first = arguments.first, let executable = CommandRunner.resolveExecutable(first) else {
            throw BackgroundProcessError.launchFailed(arguments: arguments, reason: "executable not found")
        }
        self.arguments = arguments
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(arguments.dropFirst())
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        process.standardInput = inPipe
        process.standardOutput = outPipe
        process.standardError = errPipe
        self.process = process
        self.stdinPipe = inPipe
        let exited = self.exited
        let output = self.output
        process.terminationHandler = { _ in
            exited.signal()
            output.condition.lock(); output.condition.broadcast(); output.condition.unlock()
        }
        do {
            try process.run()
        } catch {
            throw BackgroundProcessError.launchFailed(arguments: arguments, reason: "\(error)")
        }
        pid = process.processIdentifier
        try? inPipe.fileHandleForReading.close()
        try? outPipe.fileHandleForWriting.close()
        try? errPipe.fileHandleForWriting.close()
        let outHandle = outPipe.fileHandleForReading
        let errHandle = errPipe.fileHandleForReading
        // The thread holds only the buffer, so dropping this object still stops the child.
        let thread = Thread { output.drain(outHandle, errHandle) }
        thread.name = "sandbox-output-\(pid)"
        thread.start()
    }

    /// Everything the process printed on stdout so far.
    public var stdout: String {
        output.condition.lock(); defer { output.condition.unlock() }
        return String(decoding: output.out, as: UTF8.self)
    }

    /// Everything the process printed on stderr so far.
    public var stderr: String {
        output.condition.lock(); defer { output.condition.unlock() }
        return String(decoding: output.err, as: UTF8.self)
    }

    /// stdout lines printed so far (complete lines only).
    public var lines: [String] {
        let text = stdout
        var parts = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        parts.removeLast()  // the (possibly empty) unterminated rest
        return parts
    }

    public var isRunning: Bool { process.isRunning }

    /// Exit status (or 128 + signal) once the process has exited.
    public var exitStatus: Int32? {
        guard !process.isRunning else { return nil }
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    /// Waits until a stdout line satisfies `predicate` and returns it.
    /// Throws if the process exits first or the timeout expires.
    @discardableResult
    public func waitForLine(timeout: Duration = .seconds(10), description: String = "the expected line",
                            where predicate: (String) -> Bool) throws -> String {
        do {
            return try waitForLineUnparked(timeout: timeout, description: description, where: predicate)
        } catch {
            // The process may have been stopped by a signal cleanup: let it finish first.
            Termination.shared.parkIfTerminating()
            throw error
        }
    }

    private func waitForLineUnparked(timeout: Duration, description: String,
                                     where predicate: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(timeout.timeInterval)
        output.condition.lock()
        defer { output.condition.unlock() }
        while true {
            let text = String(decoding: output.out, as: UTF8.self)
            var parts = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            parts.removeLast()
            if let line = parts.first(where: predicate) { return line }
            if output.outputClosed || !process.isRunning {
                // Give the reader thread a moment to collect the last output.
                if !output.outputClosed { _ = output.condition.wait(until: Date().addingTimeInterval(0.2)) }
                let again = String(decoding: output.out, as: UTF8.self).split(separator: "\n").map(String.init)
                if let line = again.first(where: predicate) { return line }
                let status = process.isRunning ? -1 : (process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus)
                throw BackgroundProcessError.exitedEarly(arguments: arguments, status: status,
                                                         stdout: String(decoding: output.out, as: UTF8.self),
                                                         stderr: String(decoding: output.err, as: UTF8.self))
            }
            if !output.condition.wait(until: min(deadline, Date().addingTimeInterval(0.1))) && Date() >= deadline {
                throw BackgroundProcessError.lineTimeout(arguments: arguments, waitedFor: description,
                                                         stdout: String(decoding: output.out, as: UTF8.self),
                                                         stderr: String(decoding: output.err, as: UTF8.self))
            }
        }
    }

    /// Waits until stdout has a line equal to `line`.
    public func waitForLine(_ line: String, timeout: Duration = .seconds(10)) throws {
        try waitForLine(timeout: timeout, description: line.debugDescription) { $0 == line }
    }

    /// Sends a signal to the process (if it is still running).
    public func signal(_ signal: Int32) {
        if process.isRunning { kill(pid, signal) }
    }

    /// Waits for the process to exit; returns false on timeout.
    @discardableResult
    public func wait(timeout: Duration) -> Bool {
        if !process.isRunning { return true }
        let ok = exited.wait(timeout: .now() + timeout.timeInterval) == .success
        if ok { exited.signal() }  // leave it signalled for other waiters
        return ok || !process.isRunning
    }

    /// Stops the process: closes its stdin, sends SIGTERM, and SIGKILL after `grace`.
    /// Idempotent.
    public func stop(grace: Duration = .seconds(2)) {
        try? stdinPipe.fileHandleForWriting.close()
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        if !wait(timeout: grace) {
            kill(pid, SIGKILL)
            wait(timeout: .seconds(5))
        }
    }

    deinit {
        stop(grace: .milliseconds(500))
    }
}

/// Output collected by the reader thread; shared between it and `BackgroundProcess`.
private final class OutputBuffer: @unchecked Sendable {
    let condition = NSCondition()
    var out: [UInt8] = []
    var err: [UInt8] = []
    var outputClosed = false
    static let keep = 1 << 20

    /// Reads stdout and stderr until both reach end of file.
    func drain(_ outHandle: FileHandle, _ errHandle: FileHandle) {
        var open: [Int32: Bool] = [outHandle.fileDescriptor: true, errHandle.fileDescriptor: false]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty {
            var fds = open.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            // Read every descriptor that is ready before waking waiters: whatever the child
            // wrote to stderr before a stdout line is then visible once that line is.
            condition.lock()
            for p in fds where p.revents != 0 {
                let r = read(p.fd, &buffer, buffer.count)
                if r > 0 {
                    if open[p.fd] == true { Self.append(&out, buffer[0..<r]) } else { Self.append(&err, buffer[0..<r]) }
                } else if r == 0 || (errno != EINTR && errno != EAGAIN) {
                    open[p.fd] = nil
                }
            }
            condition.broadcast()
            condition.unlock()
        }
        try? outHandle.close()
        try? errHandle.close()
        condition.lock()
        outputClosed = true
        condition.broadcast()
        condition.unlock()
    }

    static func append(_ buffer: inout [UInt8], _ bytes: ArraySlice<UInt8>) {
        buffer.append(contentsOf: bytes)
        if buffer.count > keep { buffer.removeFirst(buffer.count - keep) }
    }
}
