import CNetfilter

#if canImport(Glibc)
import Glibc
#endif

/// The `errno` of a failed system call. Internal: callers turn it into a
/// ``NetlinkError`` that says what was being done.
struct SystemCallError: Error {
    /// The `errno` value the call left.
    let errno: Int32

    /// Captures the calling thread's current `errno`.
    static func current() -> SystemCallError { SystemCallError(errno: Glibc.errno) }
}

/// The one place where each system call (and each libmnl call that wraps one) is made.
///
/// Every wrapper retries on `EINTR` where the call is restartable, and reports failure
/// by throwing the `errno` it saw.
enum SystemCall {
    // MARK: Files and namespaces

    /// `open(path, O_RDONLY | O_CLOEXEC)`.
    static func openReadOnly(_ path: String) throws(SystemCallError) -> Int32 {
        while true {
            let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            if descriptor >= 0 { return descriptor }
            let error = SystemCallError.current()
            if error.errno != EINTR { throw error }
        }
    }

    /// `close(descriptor)`; errors are ignored (the descriptor is gone either way).
    static func close(_ descriptor: Int32) {
        _ = Glibc.close(descriptor)
    }

    /// `setns(descriptor, CLONE_NEWNET)`: moves the calling thread into the network
    /// namespace that `descriptor` refers to.
    static func enterNetworkNamespace(_ descriptor: Int32) throws(SystemCallError) {
        if nftproxy_setns_net(descriptor) != 0 { throw SystemCallError.current() }
    }

    // MARK: Netlink sockets (libmnl)

    /// `mnl_socket_open(bus)`: `socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, bus)`.
    static func openNetlinkSocket(bus: Int32) throws(SystemCallError) -> OpaquePointer {
        guard let socket = mnl_socket_open2(bus, Int32(SOCK_CLOEXEC.rawValue)) else { throw SystemCallError.current() }
        return socket
    }

    /// `mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID)`: binds to a kernel-chosen port ID
    /// and no multicast groups.
    static func bindNetlinkSocket(_ socket: OpaquePointer) throws(SystemCallError) {
        if mnl_socket_bind(socket, 0, pid_t(0)) != 0 { throw SystemCallError.current() }
    }

    /// `mnl_socket_close(socket)`.
    static func closeNetlinkSocket(_ socket: OpaquePointer) {
        _ = mnl_socket_close(socket)
    }

    // MARK: Socket options

    /// `setsockopt(descriptor, level, option, &value, sizeof(int))`.
    static func setSocketOption(_ descriptor: Int32, level: Int32, option: Int32, value: Int32) throws(SystemCallError) {
        var value = value
        let result = setsockopt(descriptor, level, option, &value, socklen_t(MemoryLayout<Int32>.size))
        if result != 0 { throw SystemCallError.current() }
    }

    /// `getsockopt(descriptor, level, option, &value, &length)` for an `int` option.
    static func socketOption(_ descriptor: Int32, level: Int32, option: Int32) throws(SystemCallError) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(descriptor, level, option, &value, &length) != 0 { throw SystemCallError.current() }
        return value
    }

    // MARK: Sending and receiving

    /// `sendmsg` of `buffers`, gathered into one datagram addressed to the kernel (port 0).
    ///
    /// Netlink delivers the datagram whole or not at all, so a successful call sent everything.
    static func sendToKernel(_ descriptor: Int32, _ buffers: [UnsafeRawBufferPointer]) throws(SystemCallError) {
        var vectors = buffers.map { buffer in
            iovec(iov_base: UnsafeMutableRawPointer(mutating: buffer.baseAddress), iov_len: buffer.count)
        }
        var kernel = sockaddr_nl()
        kernel.nl_family = sa_family_t(AF_NETLINK)
        while true {
            let result = withUnsafeMutablePointer(to: &kernel) { address in
                vectors.withUnsafeMutableBufferPointer { vectors in
                    var message = msghdr()
                    message.msg_name = UnsafeMutableRawPointer(address)
                    message.msg_namelen = socklen_t(MemoryLayout<sockaddr_nl>.size)
                    message.msg_iov = vectors.baseAddress
                    message.msg_iovlen = vectors.count
                    return sendmsg(descriptor, &message, 0)
                }
            }
            if result >= 0 { return }
            let error = SystemCallError.current()
            if error.errno != EINTR { throw error }
        }
    }

    /// What one `recvmsg` produced.
    enum Received {
        /// A datagram of `length` bytes from the kernel; `truncated` when it did not fit the buffer.
        case datagram(length: Int, truncated: Bool)
        /// A datagram from a sender other than the kernel, which was discarded.
        case foreign
        /// Nothing is queued (`EAGAIN` on a non-blocking receive).
        case wouldBlock
        /// The socket's receive queue overflowed since the last receive (`ENOBUFS`):
        /// some datagrams were dropped by the kernel.
        case overrun
    }

    /// `recvmsg` of one datagram into `buffer`; `wait` false adds `MSG_DONTWAIT`.
    static func receive(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, wait: Bool) throws(SystemCallError) -> Received {
        var sender = sockaddr_nl()
        while true {
            var flags: Int32 = 0
            let result = withUnsafeMutablePointer(to: &sender) { address in
                var vector = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
                return withUnsafeMutablePointer(to: &vector) { vector in
                    var message = msghdr()
                    message.msg_name = UnsafeMutableRawPointer(address)
                    message.msg_namelen = socklen_t(MemoryLayout<sockaddr_nl>.size)
                    message.msg_iov = vector
                    message.msg_iovlen = 1
                    let result = recvmsg(descriptor, &message, wait ? 0 : Int32(MSG_DONTWAIT))
                    flags = message.msg_flags
                    return result
                }
            }
            if result >= 0 {
                if sender.nl_pid != 0 { return .foreign }
                return .datagram(length: result, truncated: flags & Int32(MSG_TRUNC) != 0)
            }
            let error = SystemCallError.current()
            switch error.errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case ENOBUFS: return .overrun
            default: throw error
            }
        }
    }

    /// `poll` for readability of `descriptor`, waiting at most `milliseconds`.
    /// Returns whether data is ready.
    static func waitReadable(_ descriptor: Int32, milliseconds: Int32) throws(SystemCallError) -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while true {
            let result = poll(&entry, 1, milliseconds)
            if result >= 0 { return result > 0 }
            let error = SystemCallError.current()
            if error.errno != EINTR { throw error }
        }
    }
}
