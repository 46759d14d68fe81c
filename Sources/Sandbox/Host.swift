/// A machine of the sandbox: one network namespace and its main addresses.
///
/// A plain value; copying it does not copy the namespace. Commands run with
/// `ip netns exec <namespace> ...`.
public struct Host: Sendable, Hashable, CustomStringConvertible {
    /// Role in the topology: "client", "node-1", "node-2", "pod-1", ...
    public let name: String
    /// The network namespace (as `ip netns list` shows it).
    public let namespace: String
    /// Main IPv4 address (no prefix length), e.g. "192.0.2.10".
    public let ipv4: String
    /// Main IPv6 address (no prefix length), e.g. "2001:db8:0:2::10".
    public let ipv6: String
    /// Runs the commands; carries the default timeout.
    public let runner: CommandRunner

    public init(name: String, namespace: String, ipv4: String, ipv6: String, runner: CommandRunner = CommandRunner()) {
        self.name = name; self.namespace = namespace; self.ipv4 = ipv4; self.ipv6 = ipv6; self.runner = runner
    }

    /// The address of the given family: `ipv6` if `v6`, else `ipv4`.
    public func address(ipv6 v6: Bool) -> String { v6 ? ipv6 : ipv4 }

    /// `["ip", "netns", "exec", namespace]`: prepend to run something inside the namespace.
    public var execPrefix: [String] { ["ip", "netns", "exec", namespace] }

    /// Runs `arguments` inside this host's namespace and waits for it.
    /// Does not throw for a non-zero exit status; see `CommandResult.check()`.
    public func run(_ arguments: [String], input: String? = nil, timeout: Duration? = nil) throws -> CommandResult {
        try runner.run(execPrefix + arguments, input: input, timeout: timeout)
    }

    /// `run`, throwing `CommandError.failed` unless the command succeeded.
    @discardableResult
    public func runChecked(_ arguments: [String], input: String? = nil, timeout: Duration? = nil) throws -> CommandResult {
        try run(arguments, input: input, timeout: timeout).check()
    }

    /// `ip <arguments>` inside the namespace, e.g. `host.ip("route", "show")`.
    @discardableResult
    public func ip(_ arguments: String...) throws -> CommandResult {
        try runChecked(["ip"] + arguments)
    }

    public var description: String { "\(name) (\(namespace): \(ipv4), \(ipv6))" }

    public static func == (a: Host, b: Host) -> Bool {
        a.name == b.name && a.namespace == b.namespace && a.ipv4 == b.ipv4 && a.ipv6 == b.ipv6
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(namespace)
    }
}

/// A pod: its own namespace (the `host`) attached to a node's pod bridge.
public struct Pod: Sendable, Hashable, CustomStringConvertible {
    /// "pod-1" ... "pod-4"; its echo server answers with this name.
    public let name: String
    public let host: Host
    /// Node the pod runs on: "node-1" or "node-2".
    public let node: String

    public init(name: String, host: Host, node: String) {
        self.name = name; self.host = host; self.node = node
    }

    public var ipv4: String { host.ipv4 }
    public var ipv6: String { host.ipv6 }
    public func address(ipv6 v6: Bool) -> String { host.address(ipv6: v6) }

    public var description: String { "\(name) on \(node) (\(ipv4), \(ipv6))" }
}
