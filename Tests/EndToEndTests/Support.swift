import Foundation
import XCTest
import Sandbox
#if canImport(Glibc)
import Glibc
#endif

/// Skips the test unless it runs as root (network namespaces need CAP_SYS_ADMIN and
/// CAP_NET_ADMIN) and `ip` is available.
func requireRoot() throws {
    if getuid() != 0 {
        throw XCTSkip("requires root: the end-to-end tests create network namespaces")
    }
    if CommandRunner.resolveExecutable("ip") == nil {
        throw XCTSkip("requires the `ip` command (iproute2)")
    }
}

/// Bookkeeping for the whole EndToEnd suite, reported once when the test bundle finishes:
/// how long the suite's tests took, and whether anything it started outlived it.
///
/// Every test that creates a topology records its prefix here (`record(prefix:)`); that
/// includes topologies made by other processes (the demo, a signal helper). At the end of
/// the bundle every recorded prefix, and every `nftp-<pid>-` prefix of this process, is
/// checked with `Topology.leftovers(prefix:)` (namespaces, and with them their veths and
/// bridges, and processes), and the test process's own namespace is checked for links
/// with sandbox names (a veth end that escaped).
/// Each test also checks its own topology right after destroying it, as an ordinary
/// assertion; this final check catches whatever a test could not see (a helper process,
/// a topology created outside `withTopology`). If anything is left, it is reported,
/// removed, and the process exits with status 1 so the run fails.
final class EndToEndSuite: NSObject, XCTestObservation, @unchecked Sendable {
    static let shared = EndToEndSuite()

    private let lock = NSLock()
    private var registered = false
    private var prefixes: [String] = []
    private var tests = 0
    private var testTime: Duration = .zero
    private var firstStart: ContinuousClock.Instant?
    private var lastFinish: ContinuousClock.Instant?
    private var running: [ObjectIdentifier: ContinuousClock.Instant] = [:]
    private let clock = ContinuousClock()

    /// Call at the start of tests of the suite (from `setUp`). The first call registers the
    /// observer (tests of this module that ran before it are not counted); the test calling
    /// it starts the clock if the observer missed its start. Every test of this module that
    /// runs afterwards is counted, whether or not its class calls this.
    static func enroll(_ testCase: XCTestCase) {
        shared.enroll(testCase)
    }

    /// Remembers a topology prefix for the final leftover check.
    static func record(prefix: String) {
        shared.lock.lock(); defer { shared.lock.unlock() }
        shared.prefixes.append(prefix)
    }

    private func enroll(_ testCase: XCTestCase) {
        lock.lock()
        let first = !registered
        registered = true
        if running[ObjectIdentifier(testCase)] == nil {
            running[ObjectIdentifier(testCase)] = clock.now
            if firstStart == nil { firstStart = clock.now }
        }
        lock.unlock()
        if first { XCTestObservationCenter.shared.addTestObserver(self) }
    }

    /// Whether the test belongs to this module (the EndToEnd suite), whichever class it is in.
    private static func isEndToEnd(_ testCase: XCTestCase) -> Bool {
        String(reflecting: type(of: testCase)).hasPrefix("EndToEndTests.")
    }

    func testCaseWillStart(_ testCase: XCTestCase) {
        guard Self.isEndToEnd(testCase) else { return }
        lock.lock(); defer { lock.unlock() }
        let now = clock.now
        running[ObjectIdentifier(testCase)] = now
        if firstStart == nil { firstStart = now }
    }

    func testCaseDidFinish(_ testCase: XCTestCase) {
        guard Self.isEndToEnd(testCase) else { return }
        lock.lock(); defer { lock.unlock() }
        let now = clock.now
        if let start = running.removeValue(forKey: ObjectIdentifier(testCase)) {
            testTime += now - start
            tests += 1
        }
        lastFinish = now
    }

    func testBundleDidFinish(_ testBundle: Bundle) {
        lock.lock()
        let prefixes = self.prefixes, tests = self.tests, testTime = self.testTime
        let span = firstStart.flatMap { start in lastFinish.map { $0 - start } } ?? .zero
        lock.unlock()

        var problems: [String] = []
        for prefix in prefixes {
            let left = Topology.leftovers(prefix: prefix)
            if !left.isEmpty {
                problems.append("sandbox \(prefix): \(left)")
                _ = Topology.removeLeftovers(prefix: prefix)
            }
        }
        // Every topology this process made, recorded or not (e.g. by a test that manages its
        // own): their prefixes all start with `nftp-<pid>-`.
        let ownRuns = "\(Topology.defaultBase)-\(getpid())"
        var own = Topology.leftovers(prefix: ownRuns)
        own.processes = own.processes.filter { $0.commandLine.contains { $0.contains(ownRuns + "-") } }
        if !own.isEmpty {
            problems.append("sandboxes of this test process (\(ownRuns)-*): \(own)")
            _ = Topology.removeLeftovers(prefix: ownRuns)
        }
        let strayLinks = Self.sandboxLinksInOwnNamespace()
        if !strayLinks.isEmpty {
            problems.append("links with sandbox names in the test process's own namespace: \(strayLinks)")
        }
        let seconds = String(format: "%.1f", testTime.seconds)
        let wall = String(format: "%.1f", span.seconds)
        print("EndToEndTests: \(tests) tests ran in \(seconds) s (\(wall) s from the first start to the last finish); "
              + "\(prefixes.count) sandbox topologies, "
              + (problems.isEmpty ? "nothing left behind" : "LEFT BEHIND:\n  " + problems.joined(separator: "\n  ")))
        if !problems.isEmpty {
            fflush(nil)
            FileHandle.standardError.write(Data("EndToEndTests: failing the run: the suite left namespaces, links or processes behind\n".utf8))
            exit(1)
        }
    }

    /// Links in this process's own network namespace named like sandbox interfaces
    /// (the sandbox creates all of them inside its own namespaces, never here).
    static func sandboxLinksInOwnNamespace() -> [String] {
        guard let result = try? CommandRunner().run(["ip", "-o", "link", "show"]), result.succeeded else { return [] }
        let fixed: Set<String> = ["client", "node-1", "node-2", SandboxLayout.lanBridge]
        return result.lines.compactMap { line -> String? in
            // "12: veth-pod-1@if3: <...>" -> "veth-pod-1"
            let fields = line.split(separator: ":", maxSplits: 2)
            guard fields.count >= 2 else { return nil }
            let name = String(fields[1].trimmingCharacters(in: .whitespaces).split(separator: "@").first ?? "")
            return fixed.contains(name) || name.hasPrefix(SandboxLayout.podVeth("pod-")) ? name : nil
        }
    }
}

/// A topology for one test: recorded for the suite's final check, always destroyed, and
/// checked right after: no namespace and no process of it may remain.
func withTopology<T>(_ body: (Topology) throws -> T, file: StaticString = #filePath, line: UInt = #line) throws -> T {
    let topology = try Topology.create()
    let prefix = topology.prefix
    print("sandbox \(prefix): set up in \(topology.setupDuration)")
    EndToEndSuite.record(prefix: prefix)
    defer {
        let pids = topology.runningProcesses.map(\.pid)
        topology.destroy()
        let left = Topology.leftovers(prefix: prefix)
        XCTAssertTrue(left.isEmpty, "left behind: \(left)", file: file, line: line)
        XCTAssertFalse(namespaceList().contains { $0.hasPrefix(prefix + "-") },
                       "`ip netns list` still shows namespaces of \(prefix)", file: file, line: line)
        for pid in pids {
            XCTAssertFalse(isRunning(pid), "process \(pid) still runs", file: file, line: line)
        }
    }
    return try body(topology)
}

/// `ip netns list`, names only.
func namespaceList() -> [String] {
    let result = try? CommandRunner().run(["ip", "netns", "list"])
    return (result?.lines ?? []).map { String($0.split(separator: " ").first ?? "") }
}

/// Whether `pid` is a live (non-zombie) process.
func isRunning(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0,
          let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first != "Z"
}

extension Duration {
    /// Seconds as a Double, for messages and comparisons.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// A TCP port on 127.0.0.1 that nothing listens on now: the kernel picks it for a socket
/// bound to port 0, which is then closed. (A random number could collide with a port in use,
/// such as the source port of one of the many connections the tests make.)
func freeLoopbackPort() throws -> Int {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic -> Int32 in
            guard bind(socket, generic, length) == 0 else { return -1 }
            return getsockname(socket, generic, &length)
        }
    }
    guard bound == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    return Int(UInt16(bigEndian: address.sin_port))
}
