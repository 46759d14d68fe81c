import CNetfilter

#if canImport(Glibc)
import Glibc
#endif

/// A `NETLINK_NETFILTER` socket, bound to a kernel-assigned port ID, talking to the
/// nf_tables (and other nfnetlink) subsystems of one network namespace.
///
/// The socket enables `NETLINK_EXT_ACK` (so errors carry the kernel's explanation)
/// and `NETLINK_CAP_ACK` (so error ACKs do not echo the whole failed message). Its
/// send and receive buffers are raised before each ``commit(_:)`` to fit the batch
/// and all its ACKs.
///
/// The socket belongs to the network namespace of the thread that opened it; use
/// ``init(namespace:)`` to talk to another one. It is closed when the object is
/// released. One socket handles one exchange at a time: it is not `Sendable`.
public final class NetlinkSocket {
    /// Size of the buffer one `recvmsg` reads into. The kernel sends dump replies in
    /// datagrams of at most 32 KiB, and ACKs (capped) are small; echoed messages can be
    /// a bit over 64 KiB (the largest netlink attribute plus headers).
    public static let receiveChunkSize = 128 * 1024

    /// The smallest send and receive buffers a commit asks for (the kernel default
    /// is about 208 KiB).
    public static let minimumSocketBufferSize = 1024 * 1024

    /// Receive-buffer space reserved per ACK a batch will produce. The kernel charges
    /// each queued ACK its full socket-buffer size (measured: 832 bytes on x86_64 with
    /// kernel 6.18, for an ACK and for an error without text), not its 36 bytes of payload.
    public static let receiveBufferBytesPerAcknowledgement = 1024

    /// The libmnl socket.
    private let socket: OpaquePointer

    /// The socket's file descriptor.
    let descriptor: Int32

    /// The port ID the kernel assigned at bind time; replies are addressed to it.
    public let portID: UInt32

    /// Next sequence number for requests sent by ``dump(subsystem:type:family:build:each:)``
    /// and ``request(subsystem:type:family:flags:build:each:)``.
    private var nextSequence: UInt32

    /// Scratch space for one received datagram.
    let receiveBuffer: UnsafeMutableRawBufferPointer

    /// How many dump attempts were discarded because the kernel flagged them
    /// inconsistent (`NLM_F_DUMP_INTR`) and repeated; for tests and diagnostics.
    var discardedDumps = 0

    /// The sets whose elements were dumped through this socket, in order, and how many
    /// element lookup requests it sent; for tests (a read-back must not dump what it can look up).
    var elementDumps: [String] = []
    var elementLookupRequests = 0

    /// Whether ``commit(_:)`` raises the socket buffers to fit the batch. Only tests
    /// turn this off, to provoke a receive buffer overrun.
    var raisesBuffersForCommit = true

    /// Opens and binds a socket in the calling thread's current network namespace.
    ///
    /// - Throws: ``NetlinkError/socket(errno:call:)`` naming the call that failed.
    public init() throws(NetlinkError) {
        socket = try Self.openBoundSocket()
        descriptor = mnl_socket_get_fd(socket)
        portID = mnl_socket_get_portid(socket)
        nextSequence = UInt32.random(in: 1...UInt32.max / 2)
        receiveBuffer = .allocate(byteCount: Self.receiveChunkSize, alignment: 16)
    }

    /// Opens and binds a socket inside `namespace`; it stays bound to that namespace
    /// for its whole life, whichever thread later uses it.
    ///
    /// - Throws: ``NetlinkError/namespace(name:errno:)`` when the namespace cannot be
    ///   entered, ``NetlinkError/socket(errno:call:)`` when the socket cannot be set up.
    public init(namespace: NetworkNamespace) throws(NetlinkError) {
        socket = try namespace.run { () throws(NetlinkError) -> OpaquePointer in try Self.openBoundSocket() }
        descriptor = mnl_socket_get_fd(socket)
        portID = mnl_socket_get_portid(socket)
        nextSequence = UInt32.random(in: 1...UInt32.max / 2)
        receiveBuffer = .allocate(byteCount: Self.receiveChunkSize, alignment: 16)
    }

    /// Opens a `NETLINK_NETFILTER` socket in the calling thread's namespace, binds it
    /// and enables extended and capped ACKs.
    private static func openBoundSocket() throws(NetlinkError) -> OpaquePointer {
        let socket: OpaquePointer
        do {
            socket = try SystemCall.openNetlinkSocket(bus: NETLINK_NETFILTER)
        } catch {
            throw .socket(errno: error.errno, call: "mnl_socket_open(NETLINK_NETFILTER)")
        }
        do {
            try SystemCall.bindNetlinkSocket(socket)
        } catch {
            SystemCall.closeNetlinkSocket(socket)
            throw .socket(errno: error.errno, call: "mnl_socket_bind")
        }
        let descriptor = mnl_socket_get_fd(socket)
        for (option, name) in [(NETLINK_EXT_ACK, "NETLINK_EXT_ACK"), (NETLINK_CAP_ACK, "NETLINK_CAP_ACK")] {
            do {
                try SystemCall.setSocketOption(descriptor, level: SOL_NETLINK, option: option, value: 1)
            } catch {
                SystemCall.closeNetlinkSocket(socket)
                throw .socket(errno: error.errno, call: "setsockopt(\(name))")
            }
        }
        return socket
    }

    deinit {
        SystemCall.closeNetlinkSocket(socket)
        receiveBuffer.deallocate()
    }

    /// Returns a fresh sequence number, and reserves `count` consecutive ones from it.
    func reserveSequenceNumbers(_ count: UInt32 = 1) -> UInt32 {
        let first = nextSequence
        nextSequence &+= count
        if nextSequence == 0 { nextSequence = 1 }
        return first
    }

    // MARK: Buffers

    /// The socket send buffer, in bytes as the kernel accounts it (`SO_SNDBUF`).
    public var sendBufferSize: Int {
        get throws(NetlinkError) { try bufferSize(SO_SNDBUF, name: "SO_SNDBUF") }
    }

    /// The socket receive buffer, in bytes as the kernel accounts it (`SO_RCVBUF`).
    public var receiveBufferSize: Int {
        get throws(NetlinkError) { try bufferSize(SO_RCVBUF, name: "SO_RCVBUF") }
    }

    private func bufferSize(_ option: Int32, name: String) throws(NetlinkError) -> Int {
        do {
            return Int(try SystemCall.socketOption(descriptor, level: SOL_SOCKET, option: option))
        } catch {
            throw .socket(errno: error.errno, call: "getsockopt(\(name))")
        }
    }

    /// Raises the send and receive buffers to at least `send` and `receive` bytes
    /// (never lowers them), and returns the sizes in force afterwards.
    ///
    /// Uses `SO_SNDBUFFORCE` / `SO_RCVBUFFORCE`, which need `CAP_NET_ADMIN`, and falls
    /// back to `SO_SNDBUF` / `SO_RCVBUF`, which the kernel caps at `net.core.wmem_max` /
    /// `net.core.rmem_max`. A buffer that cannot be raised far enough is not an error
    /// here: the size in force is returned for the caller to judge.
    @discardableResult
    public func reserveBufferSpace(send: Int, receive: Int) throws(NetlinkError) -> (send: Int, receive: Int) {
        let sendSize = try raiseBuffer(
            to: send, option: SO_SNDBUF, forced: SO_SNDBUFFORCE, name: "SO_SNDBUF")
        let receiveSize = try raiseBuffer(
            to: receive, option: SO_RCVBUF, forced: SO_RCVBUFFORCE, name: "SO_RCVBUF")
        return (sendSize, receiveSize)
    }

    private func raiseBuffer(to wanted: Int, option: Int32, forced: Int32, name: String) throws(NetlinkError) -> Int {
        let current = try bufferSize(option, name: name)
        guard current < wanted else { return current }
        // The kernel doubles the value it is given (to cover its bookkeeping) and
        // reports the doubled value; ask for `wanted`, which leaves that headroom.
        let request = Int32(clamping: wanted)
        do {
            try SystemCall.setSocketOption(descriptor, level: SOL_SOCKET, option: forced, value: request)
        } catch {
            // Without CAP_NET_ADMIN: the plain option, capped by the sysctl maximum.
            try? SystemCall.setSocketOption(descriptor, level: SOL_SOCKET, option: option, value: request)
        }
        return try bufferSize(option, name: name)
    }

    // MARK: I/O (internal)

    /// Sends `buffers`, gathered into one datagram, to the kernel.
    func send(_ buffers: [UnsafeRawBufferPointer]) throws(NetlinkError) {
        do {
            try SystemCall.sendToKernel(descriptor, buffers)
        } catch {
            throw .send(errno: error.errno)
        }
    }

    /// What one receive produced.
    enum Datagram {
        /// A datagram of `length` bytes from the kernel.
        case datagram(Int)
        /// A datagram from another sender, discarded.
        case foreign
        /// Nothing queued (only when not waiting).
        case wouldBlock
        /// Replies were dropped: the receive buffer overflowed.
        case overrun
    }

    /// Receives one datagram into `buffer`; `wait` false returns `.wouldBlock` at once
    /// when nothing is queued.
    func receiveDatagram(into buffer: UnsafeMutableRawBufferPointer, wait: Bool) throws(NetlinkError) -> Datagram {
        let received: SystemCall.Received
        do {
            received = try SystemCall.receive(descriptor, into: buffer, wait: wait)
        } catch {
            throw .receive(errno: error.errno)
        }
        switch received {
        case let .datagram(length, truncated):
            if truncated {
                throw .malformed("a datagram did not fit the \(buffer.count)-byte receive buffer")
            }
            return .datagram(length)
        case .foreign: return .foreign
        case .wouldBlock: return .wouldBlock
        case .overrun: return .overrun
        }
    }

    /// Waits up to `milliseconds` for a datagram to arrive; returns whether one is queued.
    func waitForData(milliseconds: Int32) throws(NetlinkError) -> Bool {
        do {
            return try SystemCall.waitReadable(descriptor, milliseconds: milliseconds)
        } catch {
            throw .receive(errno: error.errno)
        }
    }

    /// Receives reply datagrams and hands each message in them to `handle`, until
    /// `isFinished` says so; waits up to ``replyTimeoutMilliseconds`` for each datagram.
    /// What is already queued is read without waiting (one system call per datagram:
    /// replies to element lookups come one message per datagram, thousands at a time).
    ///
    /// - Throws: ``NetlinkError/receive(errno:)`` with `ETIMEDOUT` when the kernel stays
    ///   silent, ``NetlinkError/bufferOverrun`` when replies were dropped, and what
    ///   `handle` throws.
    func receiveReplies(
        until isFinished: () -> Bool,
        _ handle: (MessageHeader, UnsafeRawBufferPointer) throws(NetlinkError) -> Void
    ) throws(NetlinkError) {
        while !isFinished() {
            switch try receiveDatagram(into: receiveBuffer, wait: false) {
            case .overrun:
                throw NetlinkError.bufferOverrun
            case .foreign:
                continue
            case .wouldBlock:
                guard try waitForData(milliseconds: Self.replyTimeoutMilliseconds) else {
                    throw NetlinkError.receive(errno: ETIMEDOUT)
                }
            case let .datagram(length):
                try forEachMessage(in: UnsafeRawBufferPointer(rebasing: receiveBuffer[..<length]), handle)
            }
        }
    }

    /// Reads and discards whatever is queued (left over from an earlier, abandoned
    /// exchange), so that the next exchange only sees its own replies. Returns whether
    /// an overrun was reported while draining.
    @discardableResult
    func drain() throws(NetlinkError) -> Bool {
        var overran = false
        while true {
            switch try receiveDatagram(into: receiveBuffer, wait: false) {
            case .wouldBlock: return overran
            case .overrun: overran = true
            case .datagram, .foreign: continue
            }
        }
    }
}
