// nftproxy-echo: a tiny TCP/UDP/SCTP echo server and client for sandbox tests.
//
//   nftproxy-echo serve --name NAME --port P [--port P2 ...] [--tcp] [--udp] [--sctp]
//                       [--exit-with-stdin] [--label TEXT]
//   nftproxy-echo request --tcp|--udp|--sctp HOST PORT [--count N] [--timeout-ms T]
//                       [--source ADDR]
//
// The server answers each connection / datagram with "NAME PEERADDR\n".
// The client prints one line per attempt: the reply, or refused, unreachable,
// timeout, unsupported, or "error: <text>". Exit status: 0 if every attempt got a
// reply, 1 otherwise, 2 for a usage error.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let usage = """
    usage:
      nftproxy-echo serve --name NAME --port P [--port P ...] [--tcp] [--udp] [--sctp]
                          [--exit-with-stdin] [--label TEXT]
          Listen on every IPv4 and IPv6 address; answer each TCP/SCTP connection and
          each UDP datagram with one line "NAME PEERADDR". Without a protocol flag:
          --tcp --udp. Prints "ready" once every socket listens.
          --exit-with-stdin  exit when stdin reaches end of file (parent lifeline)
          --label TEXT       ignored; lets a supervisor find its processes by command line
      nftproxy-echo request --tcp|--udp|--sctp HOST PORT [--count N] [--timeout-ms T]
                          [--source ADDR]
      nftproxy-echo session --tcp|--udp HOST PORT [--count N] [--interval-ms I] [--timeout-ms T]
          N exchanges over one TCP connection or one UDP socket, one line each.
          The server keeps TCP connections to its --session-port ports open and
          answers every line received on them.
          N independent attempts (default 1), each printing the reply or one of:
          refused, unreachable, timeout, unsupported, error: <text>.
          Exit status 0 if all attempts got a reply, 1 otherwise, 2 on usage errors.
    """

func fail(_ message: String) -> Never {
    writeAll(2, "nftproxy-echo: \(message)\n\(usage)\n")
    exit(2)
}

func parsePort(_ text: String) -> UInt16 {
    guard let p = UInt16(text), p > 0 else { fail("invalid port '\(text)'") }
    return p
}

func parseServe(_ args: ArraySlice<String>) -> ServeOptions {
    var name: String?
    var ports: [UInt16] = []
    var transports: [EchoTransport] = []
    var exitWithStdin = false
    var sessionPorts: [UInt16] = []
    var it = args.makeIterator()
    while let arg = it.next() {
        switch arg {
        case "--name":
            guard let v = it.next() else { fail("--name needs a value") }
            name = v
        case "--port":
            guard let v = it.next() else { fail("--port needs a value") }
            ports.append(parsePort(v))
        case "--tcp": transports.append(.tcp)
        case "--udp": transports.append(.udp)
        case "--sctp": transports.append(.sctp)
        case "--exit-with-stdin": exitWithStdin = true
        case "--session-port":
            guard let v = it.next() else { fail("--session-port needs a value") }
            sessionPorts.append(parsePort(v))
        case "--label":
            guard it.next() != nil else { fail("--label needs a value") }
        default: fail("unknown serve argument '\(arg)'")
        }
    }
    guard let name, !name.isEmpty else { fail("serve needs --name") }
    guard !ports.isEmpty else { fail("serve needs at least one --port") }
    if transports.isEmpty { transports = [.tcp, .udp] }
    var unique: [EchoTransport] = []
    for t in transports where !unique.contains(t) { unique.append(t) }
    var uniquePorts: [UInt16] = []
    for p in ports where !uniquePorts.contains(p) { uniquePorts.append(p) }
    for p in sessionPorts where !uniquePorts.contains(p) { uniquePorts.append(p) }
    return ServeOptions(name: name, ports: uniquePorts, transports: unique, exitWithStdin: exitWithStdin,
                        sessionPorts: Set(sessionPorts))
}

func parseRequest(_ args: ArraySlice<String>) -> RequestOptions {
    var transport: EchoTransport?
    var positional: [String] = []
    var count = 1
    var timeout = 1000
    var source: String?
    var it = args.makeIterator()
    while let arg = it.next() {
        switch arg {
        case "--tcp", "--udp", "--sctp":
            let t = EchoTransport(rawValue: String(arg.dropFirst(2)))!
            if let transport, transport != t { fail("choose one of --tcp, --udp, --sctp") }
            transport = t
        case "--count":
            guard let v = it.next(), let n = Int(v), n >= 1 else { fail("--count needs a positive number") }
            count = n
        case "--timeout-ms":
            guard let v = it.next(), let n = Int(v), n >= 1 else { fail("--timeout-ms needs a positive number") }
            timeout = n
        case "--source":
            guard let v = it.next() else { fail("--source needs an address") }
            source = v
        default:
            if arg.hasPrefix("--") { fail("unknown request argument '\(arg)'") }
            positional.append(arg)
        }
    }
    guard let transport else { fail("request needs --tcp, --udp or --sctp") }
    guard positional.count == 2 else { fail("request needs HOST and PORT") }
    return RequestOptions(transport: transport, host: positional[0], port: parsePort(positional[1]),
                          count: count, timeoutMilliseconds: timeout, source: source)
}

restoreTerminationSignals()
blockSIGPIPE()
let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "serve":
    var server = EchoServer(options: parseServe(arguments.dropFirst()))
    do {
        try server.open()
    } catch {
        warn("\(error)")
        exit(1)
    }
    emit("ready")
    server.run()
case "request":
    let client = EchoClient(options: parseRequest(arguments.dropFirst()))
    exit(client.run() ? 0 : 1)
case "session":
    let session = SessionClient(options: parseSession(arguments.dropFirst()))
    exit(session.run() ? 0 : 1)
case "-h", "--help", "help":
    writeAll(1, usage + "\n")
    exit(0)
default:
    fail("expected 'serve', 'request' or 'session'")
}
