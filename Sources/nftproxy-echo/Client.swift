// `nftproxy-echo request`: one or more independent attempts, one result line each.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct RequestOptions {
    var transport: EchoTransport
    var host: String
    var port: UInt16
    var count = 1
    var timeoutMilliseconds = 1000
    var source: String?
}

/// What one attempt ended with. `line` is exactly what gets printed.
enum AttemptResult {
    case reply(String)
    case refused
    case unreachable
    case timeout
    case unsupported
    case error(String)

    var line: String {
        switch self {
        case .reply(let text): return text
        case .refused: return "refused"
        case .unreachable: return "unreachable"
        case .timeout: return "timeout"
        case .unsupported: return "unsupported"
        case .error(let text): return "error: \(text)"
        }
    }

    var isReply: Bool {
        if case .reply = self { return true }
        return false
    }

    /// Maps the errno of a connect/send/receive to a result.
    static func from(errno code: Int32) -> AttemptResult {
        switch code {
        case ECONNREFUSED:
            return .refused
        case EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENETDOWN, ENONET:
            return .unreachable
        case EACCES:
            // ICMPv6 "administratively prohibited" arrives as EACCES.
            return .unreachable
        case ETIMEDOUT:
            return .timeout
        case EPROTONOSUPPORT, ESOCKTNOSUPPORT:
            return .unsupported
        default:
            return .error(errorText(code))
        }
    }
}

struct EchoClient {
    let options: RequestOptions

    /// Runs every attempt, printing one line per attempt. Returns true if all got a reply.
    func run() -> Bool {
        guard let destination = SocketAddress.parse(options.host, port: options.port) else {
            for _ in 0..<options.count { emit(AttemptResult.error("cannot resolve \(options.host)").line) }
            return false
        }
        var sourceAddress: SocketAddress?
        if let source = options.source {
            guard let s = SocketAddress.parse(source, port: 0) else {
                for _ in 0..<options.count { emit(AttemptResult.error("cannot resolve source \(source)").line) }
                return false
            }
            sourceAddress = s
        }
        var allReplied = true
        var reportedUnsupported = false
        // UDP sockets stay open until every attempt is done, so that no attempt reuses an
        // earlier one's port: each is a flow (a conntrack entry) of its own.
        var heldSockets: [Int32] = []
        defer { for fd in heldSockets { close(fd) } }
        for _ in 0..<options.count {
            let result = attempt(destination: destination, source: sourceAddress, holding: &heldSockets)
            if case .unsupported = result, !reportedUnsupported {
                warn("unsupported: \(options.transport.rawValue) is not supported by this kernel")
                reportedUnsupported = true
            }
            emit(result.line)
            if !result.isReply { allReplied = false }
        }
        return allReplied
    }

    /// Opens a socket to `destination` (connected; for UDP this only fixes the peer).
    func connectedSocket(destination: SocketAddress, source: SocketAddress?, deadline: Int64) -> (fd: Int32?, failure: AttemptResult?) {
        let flags = Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        let fd = socket(destination.family, options.transport.socketType | flags, options.transport.ipProtocol)
        if fd < 0 {
            let code = errno
            if code == EPROTONOSUPPORT || code == ESOCKTNOSUPPORT { return (nil, .unsupported) }
            return (nil, .error(errorText(code)))
        }
        if let failure = establish(fd, destination: destination, source: source, deadline: deadline) {
            close(fd)
            return (nil, failure)
        }
        return (fd, nil)
    }

    private func attempt(destination: SocketAddress, source: SocketAddress?, holding held: inout [Int32]) -> AttemptResult {
        let deadline = monotonicMilliseconds() + Int64(options.timeoutMilliseconds)
        let (socketFD, failure) = connectedSocket(destination: destination, source: source, deadline: deadline)
        guard let fd = socketFD else { return failure ?? .error("no socket") }
        if options.transport == .udp {
            // At most 512 held (the oldest closed first): within any 512 attempts no port repeats.
            if held.count == 512 { close(held.removeFirst()) }
            held.append(fd)
        }
        defer { if options.transport != .udp { close(fd) } }

        if options.transport == .udp {
            let probe = Array("ping\n".utf8)
            let sent = probe.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 { return .from(errno: errno) }
        }
        return readLine(fd: fd, deadline: deadline)
    }

    /// Binds (optionally) and connects `fd`; nil on success, else what went wrong.
    private func establish(_ fd: Int32, destination: SocketAddress, source: SocketAddress?, deadline: Int64) -> AttemptResult? {
        if let source {
            if source.family != destination.family {
                return AttemptResult.error("source and destination address families differ")
            }
            if source.withSockaddr({ bind(fd, $0, $1) }) != 0 { return AttemptResult.error(errorText(errno)) }
        }
        if options.transport == .udp {
            // Report every ICMP error (host unreachable too, not only port unreachable).
            if destination.family == AF_INET6 {
                setIntOption(fd, SockOpt.solIPv6, SockOpt.ipv6Recverr, 1)
            } else {
                setIntOption(fd, SockOpt.solIP, SockOpt.ipRecverr, 1)
            }
        }

        // Connect (for UDP this only fixes the peer, so ICMP errors get reported to us).
        if destination.withSockaddr({ connect(fd, $0, $1) }) != 0 {
            let code = errno
            if code != EINPROGRESS && code != EINTR { return AttemptResult.from(errno: code) }
            switch waitFor(fd: fd, events: Int16(POLLOUT), deadline: deadline) {
            case .timeout: return AttemptResult.timeout
            case .failed(let code): return AttemptResult.error(errorText(code))
            case .ready: break
            }
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
            if soError != 0 { return AttemptResult.from(errno: soError) }
        }

        return nil
    }

    /// Reads until a newline, end of stream (stream sockets) or one datagram (UDP).
    func readLine(fd: Int32, deadline: Int64) -> AttemptResult {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            switch waitFor(fd: fd, events: Int16(POLLIN), deadline: deadline) {
            case .timeout: return received.isEmpty ? .timeout : .reply(Self.text(received))
            case .failed(let code): return .error(errorText(code))
            case .ready: break
            }
            let n = recv(fd, &chunk, chunk.count, Int32(MSG_DONTWAIT))
            if n < 0 {
                let code = errno
                if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { continue }
                if !received.isEmpty { return .reply(Self.text(received)) }
                return .from(errno: code)
            }
            if n == 0 {
                return received.isEmpty ? .error("connection closed without a reply") : .reply(Self.text(received))
            }
            received.append(contentsOf: chunk[0..<n])
            if options.transport == .udp || received.contains(UInt8(ascii: "\n")) {
                return .reply(Self.text(received))
            }
        }
    }

    private static func text(_ bytes: [UInt8]) -> String {
        let firstLine = bytes.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        var s = String(decoding: firstLine, as: UTF8.self)
        while s.hasSuffix("\r") { s.removeLast() }
        return s
    }

    private enum WaitResult { case ready, timeout, failed(Int32) }

    private func waitFor(fd: Int32, events: Int16, deadline: Int64) -> WaitResult {
        while true {
            let remaining = deadline - monotonicMilliseconds()
            if remaining <= 0 { return .timeout }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&p, 1, Int32(min(remaining, Int64(Int32.max))))
            if n < 0 {
                if errno == EINTR { continue }
                return .failed(errno)
            }
            if n == 0 { return .timeout }
            // POLLERR/POLLHUP also count as ready: the following call reports the error.
            return .ready
        }
    }
}
