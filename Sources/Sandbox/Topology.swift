import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Errors of `Topology`.
public enum TopologyError: Error, CustomStringConvertible, Sendable {
    /// The prefix has characters other than letters, digits, '.', '_' and '-', or is too long.
    case invalidPrefix(String)
    /// Namespaces with this prefix exist already (another run, or a stale one).
    case prefixInUse(prefix: String, namespaces: [String])
    /// A setup step failed; everything already created has been removed.
    case setupFailed(step: String, reason: String)
    /// The topology was destroyed (e.g. by a signal) while the call was in progress.
    case destroyed
    /// The echo binary does not exist or is not executable.
    case echoBinaryMissing(String)
    /// A caller error, e.g. an empty port list.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .invalidPrefix(let p):
            return "invalid sandbox prefix \(p.debugDescription): use at most 48 letters, digits, '.', '_' or '-'"
        case .prefixInUse(let p, let names):
            return "sandbox prefix \(p) is in use by namespaces \(names)"
        case .setupFailed(let step, let reason):
            return "sandbox setup failed at \(step): \(reason)"
        case .destroyed:
            return "the sandbox topology has been destroyed"
        case .echoBinaryMissing(let path):
            return "echo binary \(path) not found or not executable (build it: swift build --product nftproxy-echo)"
        case .invalidArgument(let text):
            return text
        }
    }
}

/// A complete sandbox: client, two nodes and four pods, each in its own network
/// namespace, wired as `SandboxLayout` describes.
///
/// The topology owns everything it creates: namespaces (all named `<prefix>-<role>`)
/// and the processes it starts. `destroy()` removes them; it is idempotent and also
/// runs from `deinit` and, after `installSignalCleanup()`, on SIGINT/SIGTERM/SIGHUP.
///
/// Nothing here touches the namespace the calling process runs in: every link, address,
/// route and sysctl is made inside the topology's own namespaces.
public final class Topology: @unchecked Sendable {
    /// Base of generated prefixes: `nftp-<pid>-<random>`.
    public static let defaultBase = "nftp"

    /// The run's unique prefix; every namespace is named `<prefix>-<role>`.
    public let prefix: String
    /// The namespace holding the LAN bridge (no addresses of its own).
    public let lanNamespace: String
    /// The external client (192.0.2.100); routes the external ranges via node-1.
    public let client: Host
    /// The node nftproxy programs (192.0.2.10, pods 198.19.1.0/24).
    public let node1: Host
    /// The other node (192.0.2.20, pods 198.19.2.0/24).
    public let node2: Host
    /// pods[0...2] (pod-1...pod-3) run on node-1, pods[3] (pod-4) on node-2.
    public let pods: [Pod]
    /// Runs the setup commands; hosts use it too.
    public let runner: CommandRunner
    /// How long `create` took.
    public private(set) var setupDuration: Duration = .zero

    /// Both nodes.
    public var nodes: [Host] { [node1, node2] }
    /// Pods on the given node ("node-1" or "node-2").
    public func pods(on node: String) -> [Pod] { pods.filter { $0.node == node } }
    /// The pod with this name ("pod-1" ... "pod-4").
    public func pod(named name: String) -> Pod? { pods.first { $0.name == name } }
    /// Every host (client, nodes, pods) by role name.
    public func host(named name: String) -> Host? {
        ([client, node1, node2] + pods.map(\.host)).first { $0.name == name }
    }
    /// Every namespace of the topology, LAN first.
    public var namespaces: [String] {
        [lanNamespace, client.namespace, node1.namespace, node2.namespace] + pods.map(\.host.namespace)
    }

    private enum State { case building, ready, destroyed }
    private let lock = NSLock()
    private var state = State.building
    private var processes: [(pod: String?, process: BackgroundProcess)] = []

    private init(prefix: String, runner: CommandRunner) {
        self.prefix = prefix
        self.runner = runner
        lanNamespace = "\(prefix)-lan"
        client = Host(name: "client", namespace: "\(prefix)-client",
                      ipv4: SandboxLayout.clientIPv4, ipv6: SandboxLayout.clientIPv6, runner: runner)
        node1 = Host(name: "node-1", namespace: "\(prefix)-node-1",
                     ipv4: SandboxLayout.node1.lanIPv4, ipv6: SandboxLayout.node1.lanIPv6, runner: runner)
        node2 = Host(name: "node-2", namespace: "\(prefix)-node-2",
                     ipv4: SandboxLayout.node2.lanIPv4, ipv6: SandboxLayout.node2.lanIPv6, runner: runner)
        pods = SandboxLayout.pods.map { p in
            Pod(name: p.name,
                host: Host(name: p.name, namespace: "\(prefix)-\(p.name)", ipv4: p.ipv4, ipv6: p.ipv6, runner: runner),
                node: p.node)
        }
    }

    deinit { destroy() }

    // MARK: - Creation

    /// A fresh prefix `<base>-<pid>-<6 random characters>`. The PID lets
    /// `removeStale(olderRunsWithPrefix:)` recognise runs whose process is gone.
    public static func makePrefix(base: String = defaultBase) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        var rng = SystemRandomNumberGenerator()
        let token = String((0..<6).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
        return "\(base)-\(getpid())-\(token)"
    }

    /// Builds the whole topology. On any failure, removes what it already made and throws.
    ///
    /// - Parameter prefix: the namespace prefix; `nil` generates `nftp-<pid>-<random>`.
    ///   A given prefix must not be in use.
    public static func create(prefix: String? = nil, runner: CommandRunner = CommandRunner()) throws -> Topology {
        let prefix = prefix ?? makePrefix()
        guard !prefix.isEmpty, prefix.count <= 48,
              prefix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
            throw TopologyError.invalidPrefix(prefix)
        }
        let existing = Inventory.namespaces(withPrefix: prefix)
        guard existing.isEmpty else { throw TopologyError.prefixInUse(prefix: prefix, namespaces: existing) }

        let topology = Topology(prefix: prefix, runner: runner)
        LiveTopologies.shared.add(topology)
        let clock = ContinuousClock()
        let start = clock.now
        do {
            try topology.build()
        } catch {
            // Destroyed by a signal handler meanwhile: let it finish and end the process.
            Termination.shared.parkIfTerminating()
            topology.destroy()
            throw error
        }
        topology.setupDuration = clock.now - start
        return topology
    }

    /// Runs one setup step under the lock, unless the topology was destroyed meanwhile.
    private func step(_ name: String, _ body: () throws -> Void) throws {
        lock.lock()
        defer { lock.unlock() }
        guard state == .building else { throw TopologyError.destroyed }
        do {
            try body()
        } catch let error as TopologyError {
            throw error
        } catch {
            throw TopologyError.setupFailed(step: name, reason: "\(error)")
        }
    }

    /// `ip -n <namespace> -batch -` (or plain `ip -batch -` for nil) with one command a line.
    private func ipBatch(_ namespace: String?, _ lines: [String]) throws {
        let args = ["ip"] + (namespace.map { ["-n", $0] } ?? []) + ["-batch", "-"]
        try runner.execute(args, input: lines.joined(separator: "\n") + "\n", timeout: .seconds(20)).check()
    }

    private func build() throws {
        let node1Layout = SandboxLayout.node1, node2Layout = SandboxLayout.node2
        let nodeHosts = [(node1, node1Layout), (node2, node2Layout)]

        try step("creating namespaces") {
            try ipBatch(nil, namespaces.map { "netns add \($0)" })
        }

        // Sysctls first: devices created later in a namespace take its "default" values.
        try step("setting sysctls") {
            let common = [
                // Rejects must never be rate limited (per-namespace settings).
                "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
                // IPv6 addresses (link-local ones too) usable at once.
                "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
            ]
            let forwarding = [
                "net.ipv4.conf.all.forwarding=1", "net.ipv6.conf.all.forwarding=1",
                // Explicit, so the host's values (inherited by new namespaces) do not matter.
                "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
            ]
            let nodeNamespaces = Set(nodes.map(\.namespace))
            let commands = namespaces.map { ns in
                ["ip", "netns", "exec", ns, "sysctl", "-q", "-w"] + common + (nodeNamespaces.contains(ns) ? forwarding : [])
            }
            try Self.runConcurrently(commands, runner: runner)
        }

        try step("wiring the LAN") {
            var lines = [
                "link set lo up",
                "link add name \(SandboxLayout.lanBridge) type bridge forward_delay 0 mcast_snooping 0",
                "link set \(SandboxLayout.lanBridge) up",
            ]
            for host in [client, node1, node2] {
                lines += [
                    "link add name \(host.name) type veth peer name \(SandboxLayout.uplink) netns \(host.namespace)",
                    "link set \(host.name) master \(SandboxLayout.lanBridge)",
                    "link set \(host.name) up",
                ]
            }
            try ipBatch(lanNamespace, lines)
        }

        for (host, layout) in nodeHosts {
            try step("configuring \(host.name)") {
                let other = layout == node1Layout ? node2Layout : node1Layout
                var lines = [
                    "link set lo up",
                    "link set \(SandboxLayout.uplink) up",
                    "addr add \(layout.lanIPv4)/24 dev \(SandboxLayout.uplink)",
                    "addr add \(layout.lanIPv6)/64 dev \(SandboxLayout.uplink) nodad",
                    "link add name \(SandboxLayout.podBridge) type bridge forward_delay 0 mcast_snooping 0",
                    "addr add \(layout.bridgeIPv4)/24 dev \(SandboxLayout.podBridge)",
                    "addr add \(layout.bridgeIPv6)/64 dev \(SandboxLayout.podBridge) nodad",
                    "link set \(SandboxLayout.podBridge) up",
                ]
                for pod in pods(on: layout.name) {
                    let veth = SandboxLayout.podVeth(pod.name)
                    lines += [
                        "link add name \(veth) type veth peer name \(SandboxLayout.uplink) netns \(pod.host.namespace)",
                        "link set \(veth) master \(SandboxLayout.podBridge)",
                        // Hairpin mode, as a bridge CNI sets it (hairpinMode) or kubelet
                        // (hairpin-veth): where br_netfilter is loaded, a pod's packet to a
                        // service DNATed back to the same pod is bridged out of the port it
                        // came in on, which a bridge port only allows with hairpin on.
                        "link set \(veth) type bridge_slave hairpin on",
                        "link set \(veth) up",
                    ]
                }
                lines += [
                    "route add default via \(SandboxLayout.clientIPv4)",
                    "route add ::/0 via \(SandboxLayout.clientIPv6)",
                    "route add \(other.podIPv4CIDR) via \(other.lanIPv4)",
                    "route add \(other.podIPv6CIDR) via \(other.lanIPv6)",
                ]
                try ipBatch(host.namespace, lines)
            }
        }

        try step("configuring the client") {
            try ipBatch(client.namespace, [
                "link set lo up",
                "link set \(SandboxLayout.uplink) up",
                "addr add \(SandboxLayout.clientIPv4)/24 dev \(SandboxLayout.uplink)",
                "addr add \(SandboxLayout.clientIPv6)/64 dev \(SandboxLayout.uplink) nodad",
                "route add \(SandboxLayout.externalIPv4CIDR) via \(node1Layout.lanIPv4)",
                "route add \(SandboxLayout.externalIPv6CIDR) via \(node1Layout.lanIPv6)",
            ])
        }

        try step("configuring the pods") {
            let commands: [(String, [String])] = pods.map { pod in
                let layout = pod.node == node1Layout.name ? node1Layout : node2Layout
                return (pod.host.namespace, [
                    "link set lo up",
                    "link set \(SandboxLayout.uplink) up",
                    "addr add \(pod.ipv4)/24 dev \(SandboxLayout.uplink)",
                    "addr add \(pod.ipv6)/64 dev \(SandboxLayout.uplink) nodad",
                    "route add default via \(layout.bridgeIPv4)",
                    "route add ::/0 via \(layout.bridgeIPv6)",
                ])
            }
            try Self.runConcurrently(commands.map { ["ip", "-n", $0.0, "-batch", "-"] },
                                     inputs: commands.map { $0.1.joined(separator: "\n") + "\n" }, runner: runner)
        }

        lock.lock()
        if state == .building { state = .ready }
        let destroyed = state == .destroyed
        lock.unlock()
        if destroyed { throw TopologyError.destroyed }
    }

    /// Runs independent commands in parallel; throws the first failure.
    private static func runConcurrently(_ commands: [[String]], inputs: [String?]? = nil, runner: CommandRunner) throws {
        let results = ResultBox(count: commands.count)
        DispatchQueue.concurrentPerform(iterations: commands.count) { i in
            let outcome: Result<CommandResult, Error>
            do {
                outcome = .success(try runner.execute(commands[i], input: inputs?[i] ?? nil, timeout: .seconds(20)))
            } catch {
                outcome = .failure(error)
            }
            results.set(i, outcome)
        }
        for outcome in results.all() {
            switch outcome {
            case .success(let r): try r.check()
            case .failure(let e): throw e
            case nil: throw CommandError.launchFailed(arguments: [], reason: "command did not run")
            }
        }
    }

    private final class ResultBox: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [Result<CommandResult, Error>?]
        init(count: Int) { values = Array(repeating: nil, count: count) }
        func set(_ i: Int, _ v: Result<CommandResult, Error>) { lock.lock(); values[i] = v; lock.unlock() }
        func all() -> [Result<CommandResult, Error>?] { lock.lock(); defer { lock.unlock() }; return values }
    }

    // MARK: - Processes

    /// Starts `arguments` inside `host`'s namespace as a background process the topology
    /// owns: `destroy()` stops it.
    public func spawn(in host: Host, _ arguments: [String], environment: [String: String] = [:]) throws -> BackgroundProcess {
        do {
            return try spawn(in: host, arguments, environment: environment, pod: nil)
        } catch {
            Termination.shared.parkIfTerminating()
            throw error
        }
    }

    private func spawn(in host: Host, _ arguments: [String], environment: [String: String], pod: String?) throws -> BackgroundProcess {
        lock.lock()
        defer { lock.unlock() }
        guard state == .ready else { throw TopologyError.destroyed }
        let process = try BackgroundProcess(host.execPrefix + arguments, environment: environment)
        processes.append((pod, process))
        return process
    }

    /// Starts `nftproxy-echo serve` in every pod (or the given ones), named after the pod,
    /// listening on `ports` with `protocols` on all IPv4 and IPv6 addresses, and waits until
    /// each printed "ready". A protocol the kernel does not support (SCTP here) is skipped
    /// by the server with a warning on its stderr; see `EchoProtocol.isSupportedByKernel`.
    ///
    /// The servers exit on their own if this process dies (their stdin closes). If one
    /// server fails to start, the ones already started keep running until `destroy()`.
    @discardableResult
    public func startEchoServers(echoBinary: String, ports: [UInt16], protocols: Set<EchoProtocol> = [.tcp, .udp],
                                 in pods: [Pod]? = nil, readyTimeout: Duration = .seconds(10)) throws -> [BackgroundProcess] {
        guard access(echoBinary, X_OK) == 0 else { throw TopologyError.echoBinaryMissing(echoBinary) }
        guard !ports.isEmpty else { throw TopologyError.invalidArgument("startEchoServers needs at least one port") }
        let flags = EchoProtocol.allCases.filter(protocols.contains).map(\.flag)
        var started: [BackgroundProcess] = []
        do {
            for pod in pods ?? self.pods {
                let args = [echoBinary, "serve", "--name", pod.name]
                    + ports.flatMap { ["--port", String($0)] }
                    + flags + ["--exit-with-stdin", "--label", prefix]
                started.append(try spawn(in: pod.host, args, environment: [:], pod: pod.name))
            }
            for process in started {
                try process.waitForLine("ready", timeout: readyTimeout)
            }
        } catch {
            Termination.shared.parkIfTerminating()
            throw error
        }
        return started
    }

    /// Stops the echo servers that `startEchoServers` started in the given pods (or in all
    /// pods). Processes started with `spawn(in:_:)` keep running until `destroy()`.
    public func stopEchoServers(in pods: [Pod]? = nil) {
        let names = Set((pods ?? self.pods).map(\.name))
        lock.lock()
        let victims = processes.filter { $0.pod.map(names.contains) ?? false }
        processes.removeAll { $0.pod.map(names.contains) ?? false }
        lock.unlock()
        for v in victims { v.process.signal(SIGTERM) }
        for v in victims { v.process.stop(grace: .seconds(1)) }
    }

    /// Processes started by this topology that are still running.
    public var runningProcesses: [BackgroundProcess] {
        lock.lock(); defer { lock.unlock() }
        return processes.map(\.process).filter(\.isRunning)
    }

    // MARK: - Teardown

    /// Stops every process the topology started (and any other process still inside its
    /// namespaces), then deletes all namespaces named with its prefix. Idempotent; never
    /// throws. Problems are reported on stderr.
    public func destroy() {
        lock.lock()
        defer { lock.unlock() }
        if state == .destroyed { return }
        state = .destroyed
        let owned = processes.map(\.process)
        processes.removeAll()
        for p in owned { p.signal(SIGTERM) }
        for p in owned { p.stop(grace: .seconds(1)) }
        Self.removeNamespaces(ofRun: prefix, runner: runner)
        LiveTopologies.shared.remove(self)
    }

    /// Kills whatever runs inside the run's namespaces or carries its label, and deletes
    /// the namespaces. Returns the namespaces it could not delete.
    @discardableResult
    static func removeNamespaces(ofRun prefix: String, runner: CommandRunner) -> [String] {
        let names = Inventory.namespaces(withPrefix: prefix)
        let strays = Inventory.processes(inNamespaces: names, orMentioning: nil)
            + Inventory.processes().filter { $0.commandLine.contains(prefix) && $0.commandLine.contains("--label") }
                .map { SandboxProcess(pid: $0.pid, commandLine: $0.commandLine) }
        Inventory.terminate(Array(Set(strays.map(\.pid))))
        guard !names.isEmpty else { return [] }
        _ = try? runner.execute(["ip", "-force", "-batch", "-"], input: names.map { "netns del \($0)\n" }.joined(),
                            timeout: .seconds(20))
        var remaining = Inventory.namespaces(withPrefix: prefix)
        for name in remaining {
            _ = try? runner.execute(["ip", "netns", "del", name], timeout: .seconds(10))
        }
        remaining = Inventory.namespaces(withPrefix: prefix)
        if !remaining.isEmpty {
            FileHandle.standardError.write(Data("sandbox: could not delete namespaces \(remaining)\n".utf8))
        }
        return remaining
    }

    // MARK: - Inspection and sweeping

    /// One line per host: role, namespace and addresses (for the demo and for logs).
    public var summary: String {
        var lines = ["sandbox \(prefix) (LAN bridge in \(lanNamespace); LAN \(SandboxLayout.lanIPv4CIDR), \(SandboxLayout.lanIPv6CIDR))"]
        for host in [client, node1, node2] {
            lines.append("  \(host.name.padding(toLength: 7, withPad: " ", startingAt: 0)) \(host.ipv4.padding(toLength: 12, withPad: " ", startingAt: 0)) \(host.ipv6.padding(toLength: 18, withPad: " ", startingAt: 0)) netns \(host.namespace)")
        }
        for pod in pods {
            lines.append("  \(pod.name.padding(toLength: 7, withPad: " ", startingAt: 0)) \(pod.ipv4.padding(toLength: 12, withPad: " ", startingAt: 0)) \(pod.ipv6.padding(toLength: 18, withPad: " ", startingAt: 0)) netns \(pod.host.namespace) (on \(pod.node))")
        }
        return lines.joined(separator: "\n")
    }

    /// What is left of the run with this prefix: namespaces named `<prefix>-...` and live
    /// processes inside them or mentioning the prefix on their command line (echo servers
    /// carry it as `--label`). Empty after a successful `destroy()`.
    public static func leftovers(prefix: String) -> Leftovers {
        let names = Inventory.namespaces(withPrefix: prefix)
        let procs = Inventory.processes(inNamespaces: names, orMentioning: prefix)
        return Leftovers(namespaces: names, processes: procs.sorted { $0.pid < $1.pid })
    }

    /// Removes what is left of the runs with this prefix, whether or not the process that
    /// made them still lives (unlike `removeStale`): kills the processes inside namespaces
    /// named `<prefix>-...` and those with an argument equal to `prefix` or containing
    /// `<prefix>-` (an echo server's `--label`, an `ip netns exec` namespace name), then
    /// deletes those namespaces. `prefix` may be one run's prefix or a common start of
    /// several (`nftp-<pid>`). For a test suite's final sweep of what it made; a live
    /// `Topology` should be ended with `destroy()`. Returns what is still left afterwards.
    @discardableResult
    public static func removeLeftovers(prefix: String, runner: CommandRunner = CommandRunner()) -> Leftovers {
        let names = Inventory.namespaces(withPrefix: prefix)
        let inside = Inventory.processes(inNamespaces: names, orMentioning: nil)
        let labelled = Inventory.processes().filter { p in
            p.commandLine.contains { $0 == prefix || $0.contains(prefix + "-") }
        }
        Inventory.terminate(Array(Set(inside.map(\.pid) + labelled.map(\.pid))))
        removeNamespaces(ofRun: prefix, runner: runner)
        return leftovers(prefix: prefix)
    }

    /// Removes namespaces of earlier runs: names of the form `<base>-<pid>-<token>-<role>`
    /// whose `<pid>` no longer runs. Live runs (of this or other processes) are left alone.
    /// Processes still inside stale namespaces are killed first. Returns the removed names.
    @discardableResult
    public static func removeStale(olderRunsWithPrefix base: String = defaultBase,
                                   runner: CommandRunner = CommandRunner()) -> [String] {
        var staleRuns: [String: [String]] = [:]
        for name in Inventory.namespaceNames() {
            guard let run = runPrefix(of: name, base: base), let pid = Int32(run.pid) else { continue }
            if pid == getpid() || Inventory.isAlive(pid) { continue }
            staleRuns[run.prefix, default: []].append(name)
        }
        var removed: [String] = []
        for (prefix, names) in staleRuns.sorted(by: { $0.key < $1.key }) {
            let left = Set(removeNamespaces(ofRun: prefix, runner: runner))
            removed += names.filter { !left.contains($0) }
        }
        return removed.sorted()
    }

    /// Splits `<base>-<pid>-<token>-<role>` into the run prefix and pid; nil if the name
    /// does not have that shape.
    static func runPrefix(of name: String, base: String) -> (prefix: String, pid: String)? {
        guard name.hasPrefix(base + "-") else { return nil }
        let parts = name.dropFirst(base.count + 1).split(separator: "-", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(\.isNumber),
              parts[1].count == 6, parts[1].allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber) }),
              !parts[2].isEmpty else { return nil }
        return ("\(base)-\(parts[0])-\(parts[1])", String(parts[0]))
    }
}
