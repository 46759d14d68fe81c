#if canImport(Glibc)
import Glibc
#endif

/// Transport protocols of `nftproxy-echo`.
public enum EchoProtocol: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case tcp, udp, sctp

    /// The command-line flag: "--tcp", "--udp", "--sctp".
    public var flag: String { "--" + rawValue }

    public var description: String { rawValue }

    /// Whether this kernel lets us open a socket of this protocol. SCTP needs the
    /// kernel's SCTP support (module `sctp`); without it `socket()` fails with
    /// EPROTONOSUPPORT. TCP and UDP are always supported.
    public var isSupportedByKernel: Bool {
        guard self == .sctp else { return true }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 132 /* IPPROTO_SCTP */)
        if fd < 0 { return false }
        close(fd)
        return true
    }
}

/// What one `nftproxy-echo request` attempt ended with.
public enum EchoOutcome: Sendable, Hashable, CustomStringConvertible {
    /// The server's answer: its name and the peer address it saw.
    case reply(name: String, peer: String)
    /// TCP reset, ICMP port unreachable, SCTP abort.
    case refused
    /// ICMP host/network unreachable or prohibited, or no route.
    case unreachable
    /// No answer within the timeout (e.g. dropped).
    case timeout
    /// The protocol is not supported by this kernel.
    case unsupported
    /// Anything else, with the tool's message.
    case error(String)

    /// Parses one output line of `nftproxy-echo request`.
    public init(line: String) {
        switch line {
        case "refused": self = .refused
        case "unreachable": self = .unreachable
        case "timeout": self = .timeout
        case "unsupported": self = .unsupported
        default:
            if line.hasPrefix("error: ") {
                self = .error(String(line.dropFirst("error: ".count)))
            } else if let space = line.firstIndex(of: " ") {
                self = .reply(name: String(line[..<space]), peer: String(line[line.index(after: space)...]))
            } else {
                self = .error("unexpected output: \(line.debugDescription)")
            }
        }
    }

    /// The name of the answering server, for a reply.
    public var name: String? {
        if case .reply(let name, _) = self { return name }
        return nil
    }

    /// The peer address the server saw, for a reply.
    public var peer: String? {
        if case .reply(_, let peer) = self { return peer }
        return nil
    }

    public var description: String {
        switch self {
        case .reply(let name, let peer): return "\(name) \(peer)"
        case .refused: return "refused"
        case .unreachable: return "unreachable"
        case .timeout: return "timeout"
        case .unsupported: return "unsupported"
        case .error(let text): return "error: \(text)"
        }
    }
}

/// Runs `nftproxy-echo request` inside a host's namespace and parses its output.
public struct EchoClient: Sendable {
    /// Path of the `nftproxy-echo` executable.
    public let binary: String

    public init(binary: String) { self.binary = binary }

    /// The `nftproxy-echo request ...` arguments (without the `ip netns exec` prefix).
    public func requestArguments(_ proto: EchoProtocol, to address: String, port: UInt16, count: Int = 1,
                                 timeoutMilliseconds: Int = 1000, source: String? = nil) -> [String] {
        var args = [binary, "request", proto.flag, address, String(port),
                    "--count", String(count), "--timeout-ms", String(timeoutMilliseconds)]
        if let source { args += ["--source", source] }
        return args
    }

    /// Makes `count` independent attempts from `host` to `address`:`port` and returns one
    /// outcome per attempt. Throws only if the tool cannot be run or its output is malformed
    /// (usage errors); refusals, timeouts and the like are outcomes.
    public func request(from host: Host, _ proto: EchoProtocol, to address: String, port: UInt16,
                        count: Int = 1, timeoutMilliseconds: Int = 1000, source: String? = nil) throws -> [EchoOutcome] {
        let args = requestArguments(proto, to: address, port: port, count: count,
                                    timeoutMilliseconds: timeoutMilliseconds, source: source)
        let limit = Duration.milliseconds(count * (timeoutMilliseconds + 200)) + .seconds(10)
        let result = try host.run(args, timeout: limit)
        let outcomes = result.lines.map(EchoOutcome.init(line:))
        guard !result.timedOut, !result.signaled, result.status <= 1, outcomes.count == count else {
            throw CommandError.failed(result)
        }
        return outcomes
    }

    /// One attempt; see `request(from:_:to:port:count:timeoutMilliseconds:source:)`.
    public func requestOnce(from host: Host, _ proto: EchoProtocol, to address: String, port: UInt16,
                            timeoutMilliseconds: Int = 1000, source: String? = nil) throws -> EchoOutcome {
        try request(from: host, proto, to: address, port: port, count: 1,
                    timeoutMilliseconds: timeoutMilliseconds, source: source)[0]
    }
}
