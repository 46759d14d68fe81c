import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A process found by scanning /proc.
public struct SandboxProcess: Sendable, Hashable, CustomStringConvertible {
    public let pid: Int32
    public let commandLine: [String]
    public var description: String { "\(pid): \(commandLine.joined(separator: " "))" }
}

/// What is left of a sandbox run: named namespaces and live processes.
public struct Leftovers: Sendable, Hashable, CustomStringConvertible {
    /// Namespaces (in /run/netns) whose name starts with the run's prefix.
    public var namespaces: [String]
    /// Live processes that mention the prefix on their command line, or that are inside
    /// one of those namespaces.
    public var processes: [SandboxProcess]

    public var isEmpty: Bool { namespaces.isEmpty && processes.isEmpty }

    public var description: String {
        if isEmpty { return "nothing left" }
        return "namespaces: \(namespaces), processes: \(processes.map(\.description))"
    }
}

/// Reading /run/netns and /proc; nothing here changes anything.
enum Inventory {
    static let netnsDirectory = "/run/netns"

    /// Names of all named network namespaces (`ip netns list`), sorted.
    static func namespaceNames() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: netnsDirectory)) ?? []).sorted()
    }

    /// Namespaces belonging to a run: exactly `prefix-<anything>`.
    static func namespaces(withPrefix prefix: String) -> [String] {
        namespaceNames().filter { $0.hasPrefix(prefix + "-") }
    }

    /// Inode of a named namespace (what /proc/PID/ns/net points at as "net:[INODE]").
    static func inode(ofNamespace name: String) -> UInt64? {
        var st = stat()
        guard stat(netnsDirectory + "/" + name, &st) == 0 else { return nil }
        return UInt64(st.st_ino)
    }

    struct ProcEntry {
        let pid: Int32
        let commandLine: [String]
        let netInode: UInt64?
    }

    /// Every live (non-zombie) process except this one.
    static func processes() -> [ProcEntry] {
        let me = getpid()
        var result: [ProcEntry] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != me else { continue }
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
            if state == "Z" || state == "X" { continue }
            let cmdline = (FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data())
                .split(separator: 0, omittingEmptySubsequences: false)
                .map { String(decoding: $0, as: UTF8.self) }
                .filter { !$0.isEmpty }
            var inode: UInt64?
            if let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net"),
               let open = link.firstIndex(of: "["), let end = link.firstIndex(of: "]") {
                inode = UInt64(link[link.index(after: open)..<end])
            }
            result.append(ProcEntry(pid: pid, commandLine: cmdline, netInode: inode))
        }
        return result
    }

    /// Processes inside any of `namespaces`, or whose command line contains `marker`.
    static func processes(inNamespaces namespaces: [String], orMentioning marker: String?) -> [SandboxProcess] {
        let inodes = Set(namespaces.compactMap(inode(ofNamespace:)))
        return processes().filter { p in
            if let i = p.netInode, inodes.contains(i) { return true }
            if let marker, p.commandLine.contains(where: { $0.contains(marker) }) { return true }
            return false
        }.map { SandboxProcess(pid: $0.pid, commandLine: $0.commandLine) }
    }

    static func isAlive(_ pid: Int32) -> Bool {
        if kill(pid, 0) == 0 { return !isZombie(pid) }
        return errno == EPERM
    }

    static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first == "Z"
    }

    /// SIGTERM to every pid, then SIGKILL to those still alive after `grace`.
    /// Only ever called with processes inside the sandbox's own namespaces or carrying
    /// its run marker: processes the sandbox started.
    static func terminate(_ pids: [Int32], grace: Duration = .milliseconds(500)) {
        guard !pids.isEmpty else { return }
        for pid in pids { kill(pid, SIGTERM) }
        let deadline = ContinuousClock.now.advanced(by: grace)
        while ContinuousClock.now < deadline, pids.contains(where: isAlive) {
            usleep(10_000)
        }
        for pid in pids where isAlive(pid) { kill(pid, SIGKILL) }
        let killDeadline = ContinuousClock.now.advanced(by: .seconds(2))
        while ContinuousClock.now < killDeadline, pids.contains(where: isAlive) {
            usleep(10_000)
        }
    }
}
