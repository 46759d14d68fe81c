// `nftproxy-echo session`: many request/reply exchanges over ONE TCP connection or ONE
// UDP socket (so one conntrack entry), to watch a flow across ruleset changes.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct SessionOptions {
    var request: RequestOptions
    var intervalMilliseconds = 50
}

struct SessionClient {
    let options: SessionOptions

    /// Prints one line per exchange ("NAME PEER", or what went wrong). For TCP the
    /// server's greeting is the first exchange and a failure ends the session; for UDP
    /// every exchange is a datagram and the session goes on after a failure.
    /// Returns true if every exchange got a reply.
    func run() -> Bool {
        let request = options.request
        let client = EchoClient(options: request)
        guard let destination = SocketAddress.parse(request.host, port: request.port) else {
            emit(AttemptResult.error("cannot resolve \(request.host)").line)
            return false
        }
        let timeout = Int64(request.timeoutMilliseconds)
        let (socketFD, failure) = client.connectedSocket(destination: destination, source: nil,
                                                         deadline: monotonicMilliseconds() + timeout)
        guard let fd = socketFD else {
            emit((failure ?? .error("no socket")).line)
            return false
        }
        defer { close(fd) }
        var allReplied = true
        for index in 0..<request.count {
            if index > 0 { usleep(useconds_t(options.intervalMilliseconds * 1000)) }
            // TCP: the greeting answers the connection itself; later lines answer our pings.
            if request.transport == .udp || index > 0 {
                let ping = Array("ping\n".utf8)
                if ping.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) < 0 {
                    let result = AttemptResult.from(errno: errno)
                    emit(result.line)
                    allReplied = false
                    if request.transport != .udp { return false }
                    continue
                }
            }
            let result = client.readLine(fd: fd, deadline: monotonicMilliseconds() + timeout)
            emit(result.line)
            if !result.isReply {
                allReplied = false
                if request.transport != .udp { return false }
            }
        }
        return allReplied
    }
}

func parseSession(_ args: ArraySlice<String>) -> SessionOptions {
    var interval = 50
    var rest: [String] = []
    var it = args.makeIterator()
    while let arg = it.next() {
        if arg == "--interval-ms" {
            guard let v = it.next(), let n = Int(v), n >= 0 else { fail("--interval-ms needs a number") }
            interval = n
        } else {
            rest.append(arg)
        }
    }
    let request = parseRequest(rest[...])
    guard request.transport != .sctp else { fail("session supports --tcp and --udp") }
    guard request.source == nil else { fail("session does not take --source") }
    return SessionOptions(request: request, intervalMilliseconds: interval)
}
