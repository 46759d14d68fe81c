// `nftproxy-echo serve`: answers every TCP/SCTP connection and every UDP datagram
// with one line, "NAME PEERADDR", from a single thread driven by poll().

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct ServeOptions {
    var name: String
    var ports: [UInt16]
    var transports: [EchoTransport]
    /// Exit when stdin reaches end of file: a parent that holds the other end of a pipe
    /// can be sure the server does not outlive it.
    var exitWithStdin = false
    /// TCP ports whose connections stay open: every line received is answered.
    var sessionPorts: Set<UInt16> = []
}

private struct Listener {
    var fd: Int32
    var transport: EchoTransport
    var family: Int32
    var port: UInt16
}

enum ServeError: Error, CustomStringConvertible {
    case setup(String)
    var description: String {
        switch self { case .setup(let s): return s }
    }
}

struct EchoServer {
    let options: ServeOptions
    private var listeners: [Listener] = []

    init(options: ServeOptions) { self.options = options }

    /// Opens every socket. Throws on a real failure (port in use, ...). A protocol
    /// that the kernel does not support is reported on stderr and skipped, unless
    /// nothing at all could be opened.
    mutating func open() throws {
        var unsupported: [String] = []
        for transport in options.transports {
            var transportUnsupported = false
            for port in options.ports {
                for family in [AF_INET, AF_INET6] {
                    do {
                        if let l = try Self.openListener(transport: transport, family: family, port: port) {
                            listeners.append(l)
                        }
                    } catch let e as OpenError {
                        switch e {
                        case .protocolUnsupported(let code):
                            if !transportUnsupported {
                                unsupported.append("\(transport.rawValue) (\(errorText(code)))")
                            }
                            transportUnsupported = true
                        case .familyUnsupported(let code):
                            warn("\(transport.rawValue) port \(port): address family \(family == AF_INET6 ? "IPv6" : "IPv4") unavailable (\(errorText(code))), skipped")
                        case .failed(let message):
                            throw ServeError.setup(message)
                        }
                    }
                }
            }
        }
        for u in unsupported {
            warn("unsupported: \(u) is not supported by this kernel; not serving it")
        }
        if listeners.isEmpty {
            throw ServeError.setup("no socket could be opened" + (unsupported.isEmpty ? "" : " (unsupported: \(unsupported.joined(separator: ", ")))"))
        }
    }

    private enum OpenError: Error {
        case protocolUnsupported(Int32)
        case familyUnsupported(Int32)
        case failed(String)
    }

    private static func openListener(transport: EchoTransport, family: Int32, port: UInt16) throws -> Listener? {
        let flags = Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        let fd = socket(family, transport.socketType | flags, transport.ipProtocol)
        if fd < 0 {
            let code = errno
            if code == EPROTONOSUPPORT || code == ESOCKTNOSUPPORT || code == EPROTOTYPE {
                throw OpenError.protocolUnsupported(code)
            }
            if code == EAFNOSUPPORT { throw OpenError.familyUnsupported(code) }
            throw OpenError.failed("\(transport.rawValue) socket: \(errorText(code))")
        }
        setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        if family == AF_INET6 {
            // Separate IPv4 and IPv6 sockets: the IPv6 one must not take IPv4 traffic.
            setIntOption(fd, SockOpt.solIPv6, SockOpt.ipv6V6only, 1)
        }
        if transport == .udp {
            // Learn each datagram's destination address so that the reply leaves from it.
            if family == AF_INET6 {
                setIntOption(fd, SockOpt.solIPv6, SockOpt.ipv6Recvpktinfo, 1)
            } else {
                setIntOption(fd, SockOpt.solIP, SockOpt.ipPktinfo, 1)
            }
        }
        let address = SocketAddress.any(family: family, port: port)
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        if bound != 0 {
            let code = errno
            close(fd)
            throw OpenError.failed("\(transport.rawValue) bind [\(family == AF_INET6 ? "::" : "0.0.0.0")]:\(port): \(errorText(code))")
        }
        if transport.isStream, listen(fd, 128) != 0 {
            let code = errno
            close(fd)
            throw OpenError.failed("\(transport.rawValue) listen :\(port): \(errorText(code))")
        }
        return Listener(fd: fd, transport: transport, family: family, port: port)
    }

    /// Serves forever (or until stdin closes with `exitWithStdin`).
    func run() -> Never {
        // Open session connections: socket -> peer.
        var sessions: [Int32: SocketAddress] = [:]
        while true {
            var fds = listeners.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            if options.exitWithStdin {
                fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0))
            }
            let sessionFDs = Array(sessions.keys)
            fds += sessionFDs.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let n = poll(&fds, nfds_t(fds.count), -1)
            if n < 0 {
                if errno == EINTR { continue }
                warn("poll: \(errorText(errno))")
                exit(1)
            }
            let lifeline = options.exitWithStdin ? listeners.count : -1
            for i in fds.indices where fds[i].revents != 0 {
                if i == lifeline {
                    // stdin lifeline: any end of file or error means the parent is gone.
                    var byte = [UInt8](repeating: 0, count: 256)
                    let r = read(0, &byte, byte.count)
                    if r <= 0 && !(r < 0 && (errno == EINTR || errno == EAGAIN)) { exit(0) }
                } else if i < listeners.count {
                    let l = listeners[i]
                    if l.transport == .tcp && options.sessionPorts.contains(l.port) {
                        acceptSessions(l, into: &sessions)
                    } else if l.transport.isStream {
                        acceptAll(l)
                    } else {
                        answerDatagrams(l)
                    }
                } else {
                    let fd = fds[i].fd
                    if let peer = sessions[fd], !answerSession(fd, peer: peer) {
                        close(fd)
                        sessions[fd] = nil
                    }
                }
            }
        }
    }

    /// Accepts pending session connections: greets each and keeps it open.
    private func acceptSessions(_ l: Listener, into sessions: inout [Int32: SocketAddress]) {
        while let (fd, peer) = acceptNext(l) {
            let text = Array(line(for: peer).utf8)
            _ = text.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            sessions[fd] = peer
        }
    }

    /// Answers every complete line a session client sent; false when the session is over.
    private func answerSession(_ fd: Int32, peer: SocketAddress) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        if n < 0 { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR }
        if n == 0 { return false }
        let text = Array(line(for: peer).utf8)
        for _ in buffer[0..<n].filter({ $0 == UInt8(ascii: "\n") }) {
            _ = text.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        return true
    }

    private func line(for peer: SocketAddress) -> String {
        "\(options.name) \(peer.hostString)\n"
    }

    /// Accepts every pending connection, writes the line and closes it.
    private func acceptAll(_ l: Listener) {
        while let (fd, peer) = acceptNext(l) {
            let text = Array(line(for: peer).utf8)
            _ = text.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            shutdown(fd, Int32(SHUT_WR))
            // Drain what the client may have sent, so close() sends FIN rather than RST.
            var sink = [UInt8](repeating: 0, count: 4096)
            while recv(fd, &sink, sink.count, Int32(MSG_DONTWAIT)) > 0 {}
            close(fd)
        }
    }

    /// The next pending connection (non-blocking, close-on-exec), or nil when none is left.
    private func acceptNext(_ l: Listener) -> (Int32, SocketAddress)? {
        while true {
            var storage = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    accept(l.fd, $0, &len)
                }
            }
            if fd < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK { return nil }
                // ECONNABORTED and friends: a client gave up; keep serving.
                if code == ECONNABORTED || code == EPROTO || code == ENETDOWN || code == ENONET
                    || code == EHOSTDOWN || code == EHOSTUNREACH || code == ENETUNREACH || code == EPERM {
                    continue
                }
                warn("\(l.transport.rawValue) accept: \(errorText(code))")
                return nil
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            return (fd, SocketAddress(storage: storage))
        }
    }

    /// Answers every pending datagram from the address it was sent to.
    private func answerDatagrams(_ l: Listener) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var control = [UInt8](repeating: 0, count: 256)
        while true {
            var peer = sockaddr_storage()
            var iov = iovec()
            var msg = msghdr()
            let received: Int = buffer.withUnsafeMutableBytes { buf in
                control.withUnsafeMutableBytes { ctl in
                    withUnsafeMutablePointer(to: &peer) { peerPtr in
                        withUnsafeMutablePointer(to: &iov) { iovPtr in
                            iovPtr.pointee.iov_base = buf.baseAddress
                            iovPtr.pointee.iov_len = buf.count
                            msg.msg_name = UnsafeMutableRawPointer(peerPtr)
                            msg.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
                            msg.msg_iov = iovPtr
                            msg.msg_iovlen = 1
                            msg.msg_control = ctl.baseAddress
                            msg.msg_controllen = ctl.count
                            return recvmsg(l.fd, &msg, Int32(MSG_DONTWAIT))
                        }
                    }
                }
            }
            if received < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK { return }
                // Errors queued by ICMP (e.g. a previous reply's peer was unreachable):
                // they are per-socket noise for a server; keep going.
                continue
            }
            let destination = Self.destinationInfo(control: control, length: Int(msg.msg_controllen), family: l.family)
            reply(on: l, to: SocketAddress(storage: peer), from: destination)
        }
    }

    /// Raw pktinfo payload (in_pktinfo or in6_pktinfo) from the control messages.
    private static func destinationInfo(control: [UInt8], length: Int, family: Int32) -> [UInt8]? {
        // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } followed by
        // data aligned to sizeof(size_t).
        let align = MemoryLayout<Int>.size
        let header = (MemoryLayout<Int>.size + 8 + align - 1) / align * align
        var offset = 0
        while offset + header <= length {
            let cmsgLen = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: Int.self) }
            let level = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + MemoryLayout<Int>.size, as: Int32.self) }
            let type = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + MemoryLayout<Int>.size + 4, as: Int32.self) }
            if cmsgLen < header || offset + cmsgLen > length { return nil }
            let data = Array(control[(offset + header)..<(offset + cmsgLen)])
            if family == AF_INET, level == SockOpt.solIP, type == SockOpt.ipPktinfo, data.count >= 12 { return data }
            if family == AF_INET6, level == SockOpt.solIPv6, type == SockOpt.ipv6Pktinfo, data.count >= 20 { return data }
            offset += (cmsgLen + align - 1) / align * align
        }
        return nil
    }

    private func reply(on l: Listener, to peer: SocketAddress, from pktinfo: [UInt8]?) {
        var text = Array(line(for: peer).utf8)
        var peerStorage = peer.storage
        var iov = iovec()
        var msg = msghdr()
        let align = MemoryLayout<Int>.size
        let header = (MemoryLayout<Int>.size + 8 + align - 1) / align * align
        var control: [UInt8] = []
        if let info = pktinfo {
            var payload: [UInt8]
            var level: Int32
            var type: Int32
            if l.family == AF_INET {
                // struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr; }:
                // answer from the address the datagram was sent to (ipi_addr).
                payload = [UInt8](repeating: 0, count: 12)
                payload.replaceSubrange(4..<8, with: info[8..<12])
                level = SockOpt.solIP
                type = SockOpt.ipPktinfo
            } else {
                // struct in6_pktinfo { in6_addr ipi6_addr; unsigned ipi6_ifindex; }
                payload = Array(info[0..<20])
                level = SockOpt.solIPv6
                type = SockOpt.ipv6Pktinfo
            }
            let total = header + payload.count
            let space = (total + align - 1) / align * align
            control = [UInt8](repeating: 0, count: space)
            control.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: total, toByteOffset: 0, as: Int.self)
                raw.storeBytes(of: level, toByteOffset: MemoryLayout<Int>.size, as: Int32.self)
                raw.storeBytes(of: type, toByteOffset: MemoryLayout<Int>.size + 4, as: Int32.self)
            }
            control.replaceSubrange(header..<(header + payload.count), with: payload)
        }
        var sent = text.withUnsafeMutableBytes { buf in
            control.withUnsafeMutableBytes { ctl in
                withUnsafeMutablePointer(to: &peerStorage) { peerPtr in
                    withUnsafeMutablePointer(to: &iov) { iovPtr in
                        iovPtr.pointee.iov_base = buf.baseAddress
                        iovPtr.pointee.iov_len = buf.count
                        msg.msg_name = UnsafeMutableRawPointer(peerPtr)
                        msg.msg_namelen = peer.length
                        msg.msg_iov = iovPtr
                        msg.msg_iovlen = 1
                        msg.msg_control = ctl.count > 0 ? ctl.baseAddress : nil
                        msg.msg_controllen = ctl.count
                        return sendmsg(l.fd, &msg, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                    }
                }
            }
        }
        if sent < 0 && pktinfo != nil {
            // The destination may not be usable as a source (broadcast, address gone):
            // let the kernel choose.
            sent = text.withUnsafeBytes { buf in
                peer.withSockaddr { sendto(l.fd, buf.baseAddress, buf.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT), $0, $1) }
            }
        }
    }
}
