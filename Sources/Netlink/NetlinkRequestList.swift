import CNetfilter

#if canImport(Glibc)
import Glibc
#endif

/// Independent netlink requests to send together, each answered by its own ACK.
///
/// Unlike a ``NetlinkBatch`` this is not a transaction: the kernel handles each request
/// on its own, so some can succeed while others fail. It suits subsystems without
/// batch support (such as ``NetfilterSubsystem/conntrack``) when many requests must be
/// made: ``NetlinkSocket/perform(_:)`` packs many requests into each datagram instead
/// of waiting for one round trip per request.
///
/// ```swift
/// var requests = NetlinkRequestList()
/// for entry in entries {
///     requests.append(subsystem: .conntrack, type: UInt16(IPCTNL_MSG_CT_DELETE.rawValue),
///                     family: UInt8(AF_INET)) { message in
///         // message.put(…) the entry's attributes
///     }
/// }
/// let outcomes = try socket.perform(requests)   // one per request, in order
/// ```
///
/// The list is a value: copies are independent (its buffer is copied on write).
public struct NetlinkRequestList: Sendable {
    /// The most bytes one request may take, header included. Before each
    /// ``append(subsystem:type:family:flags:build:)`` the list makes sure this much
    /// space is free, because the attribute writers (libmnl's) do not check bounds.
    public static let maximumMessageSize = 64 * 1024

    /// The requests' messages, back to back, each padded to the netlink alignment.
    /// Sequence numbers are written when the requests are sent.
    private var buffer: MessageBuffer

    /// Byte offset of each request in `buffer`.
    private var offsets: [Int] = []

    /// An empty list.
    public init() {
        buffer = MessageBuffer(capacity: 0)
    }

    /// Number of requests appended.
    public var count: Int { offsets.count }

    /// Whether no request was appended; performing an empty list sends nothing.
    public var isEmpty: Bool { offsets.isEmpty }

    /// Appends one request.
    ///
    /// The list writes the netlink header (type `subsystem << 8 | type`, flags
    /// `NLM_F_REQUEST | NLM_F_ACK | flags`) and the `nfgenmsg` header with `family`;
    /// `build` then appends the attributes through its ``NetlinkMessageWriter``. The
    /// message must stay within ``maximumMessageSize`` bytes.
    ///
    /// If `build` throws, nothing is appended and the error is rethrown.
    ///
    /// - Parameters:
    ///   - subsystem: The nfnetlink subsystem that handles the request.
    ///   - type: The message within the subsystem, `IPCTNL_MSG_CT_DELETE`, …
    ///   - family: The protocol family, `AF_INET`, `AF_INET6`, …
    ///   - flags: Extra `NLM_F_*` flags.
    ///   - build: Fills the payload after the `nfgenmsg` header; the writer is valid
    ///     only during the call.
    public mutating func append<Failure: Error>(
        subsystem: NetfilterSubsystem,
        type: UInt16,
        family: UInt8,
        flags: UInt16 = 0,
        build: (NetlinkMessageWriter) throws(Failure) -> Void
    ) throws(Failure) {
        if !isKnownUniquelyReferenced(&buffer) {
            buffer = buffer.copy(reserving: Self.maximumMessageSize)
        }
        offsets.append(try buffer.appendMessage(
            type: NetlinkFormat.messageType(subsystem: subsystem, message: type),
            flags: UInt16(NLM_F_REQUEST | NLM_F_ACK) | flags,
            sequence: 0,
            family: family,
            maximumSize: Self.maximumMessageSize,
            describe: { "a request" },
            build: { (header) throws(Failure) in try build(NetlinkMessageWriter(header)) }))
    }

    /// The bytes of requests `range` (padded messages, back to back).
    func messageBytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        let start = offsets[range.lowerBound]
        let end = range.upperBound < offsets.count ? offsets[range.upperBound] : buffer.count
        return UnsafeRawBufferPointer(start: buffer.base + start, count: end - start)
    }

    /// Padded length of request `index`.
    func messageLength(_ index: Int) -> Int {
        let end = index + 1 < offsets.count ? offsets[index + 1] : buffer.count
        return end - offsets[index]
    }

    /// Keeps the storage alive while `body` uses pointers from ``messageBytes(_:)``.
    func withStorage<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        defer { withExtendedLifetime(buffer) {} }
        return try body()
    }
}

/// The kernel's answer to one request of a ``NetlinkRequestList``.
public struct NetlinkRequestOutcome: Hashable, Sendable {
    /// The error as a positive `errno` (`ENOENT`, …), or 0 when the request succeeded.
    public let errno: Int32

    /// The extended-ACK text (`NLMSGERR_ATTR_MSG`), when the kernel supplied one.
    public let kernelMessage: String?

    /// Whether the kernel acknowledged the request without error.
    public var succeeded: Bool { errno == 0 }

    public init(errno: Int32, kernelMessage: String? = nil) {
        self.errno = errno
        self.kernelMessage = kernelMessage
    }
}

extension NetlinkSocket {
    /// The most requests of a ``NetlinkRequestList`` that ``perform(_:)`` puts in one datagram.
    public static let maximumRequestsPerDatagram = 1024

    /// Sends every request of `requests` and returns the kernel's answer to each, in order.
    ///
    /// Requests go out many per datagram; the kernel handles the messages of a datagram
    /// one after the other, and a failing request does not stop the ones after it. The
    /// ACKs of one datagram are all read before the next is sent, so the receive buffer
    /// (raised first, like ``commit(_:)`` does) never holds more than one datagram's ACKs.
    /// Reply messages other than ACKs (for example the answer to a GET) are discarded:
    /// use ``request(subsystem:type:family:flags:build:each:)`` for those.
    ///
    /// - Throws: ``NetlinkError/bufferOverrun`` when ACKs were lost (some requests may
    ///   then have been applied, others not), ``NetlinkError/batchTooLarge(bytes:sendBufferLimit:)``
    ///   when one request does not fit the send buffer, and transport errors
    ///   (``NetlinkError/send(errno:)``, ``NetlinkError/receive(errno:)``,
    ///   ``NetlinkError/malformed(_:)``). Requests of earlier datagrams have been
    ///   applied by then. A request the kernel refuses is not an error here: its
    ///   outcome carries the `errno`.
    public func perform(_ requests: NetlinkRequestList) throws(NetlinkError) -> [NetlinkRequestOutcome] {
        guard !requests.isEmpty else { return [] }
        try drain()

        // The kernel refuses datagrams larger than the send buffer less 32 bytes.
        let sendOverhead = 32
        let perDatagram = Self.maximumRequestsPerDatagram
        let acknowledgementSpace = perDatagram * Self.receiveBufferBytesPerAcknowledgement + Self.receiveChunkSize
        let space = try reserveBufferSpace(
            send: Self.minimumSocketBufferSize,
            receive: max(acknowledgementSpace, Self.minimumSocketBufferSize))
        let sendLimit = space.send - sendOverhead
        let requestLimit = max(
            1, min(perDatagram, (space.receive - Self.receiveChunkSize) / Self.receiveBufferBytesPerAcknowledgement))

        var outcomes: [NetlinkRequestOutcome?] = Array(repeating: nil, count: requests.count)
        let scratch = MessageBuffer(capacity: min(sendLimit, 256 * 1024))
        do {
            try requests.withStorage { () throws(NetlinkError) in
                var start = 0
                while start < requests.count {
                    // As many requests as fit one datagram and one receive buffer of ACKs.
                    var end = start
                    var bytes = 0
                    while end < requests.count, end - start < requestLimit {
                        let length = requests.messageLength(end)
                        if bytes + length > sendLimit { break }
                        bytes += length
                        end += 1
                    }
                    if end == start {
                        throw NetlinkError.batchTooLarge(bytes: requests.messageLength(start), sendBufferLimit: sendLimit)
                    }
                    try performDatagram(requests, start..<end, scratch: scratch, outcomes: &outcomes)
                    start = end
                }
            }
        } catch {
            _ = try? drain()
            throw error
        }
        return outcomes.map { $0! }
    }

    /// Sends requests `range` in one datagram (with fresh sequence numbers) and reads their ACKs.
    private func performDatagram(
        _ requests: NetlinkRequestList,
        _ range: Range<Int>,
        scratch: MessageBuffer,
        outcomes: inout [NetlinkRequestOutcome?]
    ) throws(NetlinkError) {
        let firstSequence = reserveSequenceNumbers(UInt32(range.count))
        scratch.count = 0
        scratch.append(requests.messageBytes(range))
        var offset = 0
        for index in range {
            let sequence = firstSequence &+ UInt32(index - range.lowerBound)
            scratch.base.storeBytes(of: sequence, toByteOffset: offset + 8, as: UInt32.self)
            offset += requests.messageLength(index)
        }
        try send([scratch.bytes])

        var pending = range.count
        try receiveReplies(until: { pending == 0 }) { (header, message) throws(NetlinkError) in
            guard header.isError, header.portID == portID || header.portID == 0 else { return }
            let position = header.sequence &- firstSequence
            guard position < UInt32(range.count) else { return }
            let index = range.lowerBound + Int(position)
            guard outcomes[index] == nil else { return }
            let reply = try Acknowledgement(header: header, message: message)
            outcomes[index] = NetlinkRequestOutcome(errno: reply.errno, kernelMessage: reply.kernelMessage)
            pending -= 1
        }
    }
}
