#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One `nftproxy run` process of the daemon rows: started with its output in files, asked
/// over HTTP (`/healthz`, `/metrics`) and read in /proc (resident set), killed at the end.
final class DaemonProcess {
    let pid: pid_t
    /// CLOCK_MONOTONIC just before `posix_spawn`.
    let started: Double
    /// Wall clock at the same moment, for the daemon's log timestamps.
    let startedDate: Date
    let stderrPath: String
    let healthzPort: Int
    let metricsPort: Int
    private var reaped = false

    init(arguments: [String], stderrPath: String, healthzPort: Int, metricsPort: Int) throws {
        guard let executable = arguments.first, executable.hasPrefix("/") else {
            throw BenchError("DaemonProcess needs an absolute executable path")
        }
        self.stderrPath = stderrPath
        self.healthzPort = healthzPort
        self.metricsPort = metricsPort
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        guard !argv.dropLast().contains(where: { $0 == nil }) else { throw BenchError("out of memory for argv") }
        var pid: pid_t = 0
        startedDate = Date()
        started = Clock.now()
        let spawned = posix_spawn(&pid, executable, &actions, nil, &argv, environ)
        guard spawned == 0 else { throw BenchError("cannot start \(executable): \(String(cString: strerror(spawned)))") }
        self.pid = pid
    }

    /// Whether the process still runs (not yet exited).
    var isRunning: Bool {
        guard !reaped else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { reaped = true; return false }
        return true
    }

    /// Polls `/healthz` every `interval` until it answers 200; returns that moment
    /// (CLOCK_MONOTONIC), or throws when the process died or `timeout` passed.
    func waitUntilHealthy(timeout: Double, interval: Double = 0.005) throws -> Double {
        let deadline = Clock.now() + timeout
        while Clock.now() < deadline {
            if HTTPProbe.get(port: healthzPort, path: "/healthz")?.status == 200 { return Clock.now() }
            guard isRunning else { throw BenchError("nftproxy run exited:\n\(stderrTail)") }
            usleep(UInt32(interval * 1e6))
        }
        throw BenchError("nftproxy run not healthy after \(Int(timeout)) s:\n\(stderrTail)")
    }

    /// The Prometheus text of `/metrics`.
    func metrics(timeoutSeconds: Int = 5, received: (() -> Void)? = nil) throws -> String {
        guard let response = HTTPProbe.get(port: metricsPort, path: "/metrics", timeoutSeconds: timeoutSeconds,
                                           received: received),
              response.status == 200 else {
            throw BenchError("no /metrics from nftproxy run")
        }
        return response.body
    }

    /// VmRSS and VmHWM from /proc, KiB.
    func memory() -> (residentKiB: Int, peakKiB: Int)? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        func field(_ name: String) -> Int? {
            for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
                return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int($0) }
            }
            return nil
        }
        guard let rss = field("VmRSS"), let hwm = field("VmHWM") else { return nil }
        return (rss, hwm)
    }

    /// CPU time used so far (user + system), from /proc/PID/stat.
    func cpuSeconds() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime 14 and stime 15 (1-based) of the whole line.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (user + system) / ticks
    }

    /// The daemon's JSON log lines so far.
    var logLines: [[String: Any]] {
        guard let text = try? String(contentsOfFile: stderrPath, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }

    var stderrTail: String {
        String(((try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "").suffix(3000))
    }

    /// Sends `signal` and waits for the exit.
    func kill(_ signal: Int32 = SIGKILL) {
        guard !reaped else { return }
        Glibc.kill(pid, signal)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        reaped = true
    }

    deinit { kill() }
}

/// A minimal blocking HTTP/1.0 GET to 127.0.0.1, enough for /healthz and /metrics.
enum HTTPProbe {
    static func get(port: Int, path: String, timeoutSeconds: Int = 5) -> (status: Int, body: String)? {
        get(port: port, path: path, timeoutSeconds: timeoutSeconds, received: nil)
    }

    /// The same; `received` is called when the last byte arrived, before the body is decoded.
    static func get(port: Int, path: String, timeoutSeconds: Int, received: (() -> Void)?) -> (status: Int, body: String)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return nil }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            response += buffer[0..<count]
        }
        received?()
        // The status line and headers end at the first empty line; only the body is decoded whole.
        let separator = Array("\r\n\r\n".utf8)
        let headerEnd = response.indices.dropLast(3).first { response[$0..<($0 + 4)].elementsEqual(separator) }
        let head = String(decoding: response[..<(headerEnd ?? response.count)], as: UTF8.self)
        guard head.hasPrefix("HTTP/"), let status = Int(head.split(separator: " ").dropFirst().first ?? "") else {
            return nil
        }
        let body = headerEnd.map { String(decoding: response[($0 + 4)...], as: UTF8.self) } ?? ""
        return (status, body)
    }

    /// A port on 127.0.0.1 the kernel says is free now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw BenchError("bind: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
