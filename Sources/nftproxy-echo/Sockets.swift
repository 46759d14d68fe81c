// Small, dependency-free helpers over the Glibc socket API used by both the
// server and the client side of nftproxy-echo.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The transport protocols the echo tool speaks.
enum EchoTransport: String, CaseIterable {
    case tcp, udp, sctp

    /// `SOCK_STREAM` for TCP and SCTP (one-to-one style), `SOCK_DGRAM` for UDP.
    var socketType: Int32 {
        switch self {
        case .tcp, .sctp: return Int32(SOCK_STREAM.rawValue)
        case .udp: return Int32(SOCK_DGRAM.rawValue)
        }
    }

    var ipProtocol: Int32 {
        switch self {
        case .tcp: return Int32(IPPROTO_TCP)
        case .udp: return Int32(IPPROTO_UDP)
        case .sctp: return 132  // IPPROTO_SCTP
        }
    }

    var isStream: Bool { self != .udp }
}

/// Socket option numbers that are not (reliably) imported from the C headers.
enum SockOpt {
    static let ipPktinfo: Int32 = 8          // IP_PKTINFO
    static let ipRecverr: Int32 = 11         // IP_RECVERR
    static let ipv6Recverr: Int32 = 25       // IPV6_RECVERR
    static let ipv6V6only: Int32 = 26        // IPV6_V6ONLY
    static let ipv6Recvpktinfo: Int32 = 49   // IPV6_RECVPKTINFO
    static let ipv6Pktinfo: Int32 = 50       // IPV6_PKTINFO
    static let solIP: Int32 = 0              // SOL_IP == IPPROTO_IP
    static let solIPv6: Int32 = 41           // SOL_IPV6 == IPPROTO_IPV6
}

/// An IPv4 or IPv6 socket address (address plus port).
struct SocketAddress {
    var storage = sockaddr_storage()

    var family: Int32 { Int32(storage.ss_family) }

    var length: socklen_t {
        family == AF_INET6 ? socklen_t(MemoryLayout<sockaddr_in6>.size) : socklen_t(MemoryLayout<sockaddr_in>.size)
    }

    init() {}

    init(storage: sockaddr_storage) { self.storage = storage }

    /// The wildcard address of a family with the given port.
    static func any(family: Int32, port: UInt16) -> SocketAddress {
        var a = SocketAddress()
        if family == AF_INET6 {
            withUnsafeMutableBytes(of: &a.storage) { raw in
                let p = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
                p.pointee.sin6_family = sa_family_t(AF_INET6)
                p.pointee.sin6_port = port.bigEndian
                p.pointee.sin6_addr = in6addr_any
            }
        } else {
            withUnsafeMutableBytes(of: &a.storage) { raw in
                let p = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
                p.pointee.sin_family = sa_family_t(AF_INET)
                p.pointee.sin_port = port.bigEndian
                p.pointee.sin_addr.s_addr = 0
            }
        }
        return a
    }

    /// Parses a numeric IPv4/IPv6 address (IPv6 optionally in brackets, with a `%scope`),
    /// or resolves a host name with getaddrinfo.
    static func parse(_ text: String, port: UInt16) -> SocketAddress? {
        var host = text
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        var a = SocketAddress()
        withUnsafeMutableBytes(of: &a.storage) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(first.pointee.ai_addrlen)))
        }
        return a
    }

    var port: UInt16 {
        withUnsafeBytes(of: storage) { raw in
            family == AF_INET6
                ? UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
                : UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
        }
    }

    /// The address in its usual text form. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
    /// are printed as plain IPv4.
    var hostString: String {
        withUnsafeBytes(of: storage) { raw -> String in
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            if family == AF_INET6 {
                var sin6 = raw.load(as: sockaddr_in6.self)
                let bytes = withUnsafeBytes(of: &sin6.sin6_addr) { Array($0) }
                if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
                    return "\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])"
                }
                _ = inet_ntop(AF_INET6, &sin6.sin6_addr, &buffer, socklen_t(buffer.count))
            } else {
                var sin = raw.load(as: sockaddr_in.self)
                _ = inet_ntop(AF_INET, &sin.sin_addr, &buffer, socklen_t(buffer.count))
            }
            return cString(buffer)
        }
    }

    /// Calls `body` with a `sockaddr` pointer and the right length for this family.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var copy = storage
        let len = length
        return withUnsafePointer(to: &copy) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, len) }
        }
    }
}

/// A NUL-terminated C character buffer as a String.
func cString(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

/// The text of an errno value.
func errorText(_ code: Int32) -> String {
    guard let p = strerror(code) else { return "errno \(code)" }
    return String(decoding: UnsafeRawBufferPointer(start: p, count: strlen(p)), as: UTF8.self)
}

/// Sets an integer socket option; returns false on failure (errno set).
@discardableResult
func setIntOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) -> Bool {
    var v = value
    return setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0
}

/// Writes all of `text` to a file descriptor (stdout/stderr), retrying on EINTR.
func writeAll(_ fd: Int32, _ text: String) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { raw in
            write(fd, raw.baseAddress! + offset, raw.count - offset)
        }
        if n < 0 {
            if errno == EINTR { continue }
            return
        }
        offset += n
    }
    bytes.removeAll()
}

func emit(_ line: String) { writeAll(1, line + "\n") }
func warn(_ line: String) { writeAll(2, "nftproxy-echo: " + line + "\n") }

/// Milliseconds on the monotonic clock.
func monotonicMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// A parent may have left SIGINT/SIGTERM/SIGHUP ignored or blocked (both survive exec):
/// make them terminate this process again.
func restoreTerminationSignals() {
    var set = sigset_t()
    sigemptyset(&set)
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal(sig, SIG_DFL)
        sigaddset(&set, sig)
    }
    sigprocmask(SIG_UNBLOCK, &set, nil)
}

/// Blocks SIGPIPE so that writes to closed sockets or pipes fail with EPIPE
/// instead of killing the process.
func blockSIGPIPE() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGPIPE)
    sigprocmask(SIG_BLOCK, &set, nil)
}
