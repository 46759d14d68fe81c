import CNetfilter

#if canImport(Glibc)
import Glibc
#endif

extension NetlinkSocket {
    /// How many times ``dump(subsystem:type:family:build:each:)`` starts over when the
    /// kernel flags the dump as inconsistent (`NLM_F_DUMP_INTR`).
    public static let maximumDumpAttempts = 8

    /// How long a dump or request waits for each reply datagram before giving up
    /// with ``NetlinkError/receive(errno:)`` (`ETIMEDOUT`).
    static let replyTimeoutMilliseconds: Int32 = 30_000

    /// Dumps objects: sends a GET request with `NLM_F_DUMP` and calls `each` with every
    /// message of a consistent reply.
    ///
    /// Replies are collected until `NLMSG_DONE`, and only then handed to `each`; if the
    /// kernel marked the dump inconsistent (`NLM_F_DUMP_INTR`: the ruleset changed while
    /// it was read), the dump is discarded and repeated, up to ``maximumDumpAttempts``
    /// times. So `each` sees exactly one complete, consistent dump.
    ///
    /// - Parameters:
    ///   - subsystem: The nfnetlink subsystem; nf_tables unless told otherwise.
    ///   - type: The GET message, `NFT_MSG_GETTABLE`, `NFT_MSG_GETSETELEM`, …
    ///   - family: The protocol family to list, or `AF_UNSPEC` (`NFPROTO_UNSPEC`) for all.
    ///   - build: Adds attributes that narrow the dump (for `NFT_MSG_GETSETELEM`, the
    ///     table and set names); the request's headers are already written.
    ///   - each: Called with each dumped message; the view is valid only during the call.
    /// - Throws: ``NetlinkError/rejected(operation:errno:kernelMessage:)`` when the kernel
    ///   refuses the dump, ``NetlinkError/dumpInterrupted(operation:attempts:)``,
    ///   ``NetlinkError/bufferOverrun``, transport errors, and whatever `each` throws
    ///   (a ``NetlinkError`` as is, anything else wrapped in ``NetlinkError/handler(_:)``).
    public func dump(
        subsystem: NetfilterSubsystem = .nftables,
        type: UInt16,
        family: UInt8,
        build: ((NetlinkMessageWriter) throws(NetlinkError) -> Void)? = nil,
        each: (NetlinkMessageView) throws -> Void
    ) throws(NetlinkError) {
        let operation = RequestName.describe(subsystem: subsystem, type: type, family: family, dump: true)
        for _ in 0..<Self.maximumDumpAttempts {
            let replies = try exchange(
                subsystem: subsystem, type: type, family: family, flags: UInt16(NLM_F_DUMP),
                operation: operation, build: build)
            if replies.interrupted {
                discardedDumps += 1
                continue
            }
            try deliver(replies.messages, to: each)
            return
        }
        throw .dumpInterrupted(operation: operation, attempts: Self.maximumDumpAttempts)
    }

    /// Sends one request with `NLM_F_ACK` and calls `each` with every reply message
    /// that precedes the kernel's ACK: for example `NFT_MSG_GETGEN`, a GET of one
    /// named object, or a GETSETELEM of given elements of one set.
    ///
    /// `each` is called only once the kernel acknowledged the request; a refused
    /// request calls it for nothing. A request without replies (a delete, say) passes
    /// `each: { _ in }`.
    ///
    /// - Parameters:
    ///   - subsystem: The nfnetlink subsystem; nf_tables unless told otherwise.
    ///   - type: The message type within the subsystem.
    ///   - family: The protocol family.
    ///   - flags: Extra `NLM_F_*` flags (`NLM_F_REQUEST` and `NLM_F_ACK` are always set).
    ///   - build: Adds the request's attributes after its headers.
    ///   - each: Called with each reply message; the view is valid only during the call.
    /// - Throws: ``NetlinkError/rejected(operation:errno:kernelMessage:)`` when the kernel
    ///   refuses the request, ``NetlinkError/bufferOverrun``, transport errors, and
    ///   whatever `each` throws (wrapped in ``NetlinkError/handler(_:)`` unless it is a
    ///   ``NetlinkError``).
    public func request(
        subsystem: NetfilterSubsystem = .nftables,
        type: UInt16,
        family: UInt8,
        flags: UInt16 = 0,
        build: ((NetlinkMessageWriter) throws(NetlinkError) -> Void)? = nil,
        each: (NetlinkMessageView) throws -> Void
    ) throws(NetlinkError) {
        let operation = RequestName.describe(subsystem: subsystem, type: type, family: family, dump: false)
        let replies = try exchange(
            subsystem: subsystem, type: type, family: family, flags: flags | UInt16(NLM_F_ACK),
            operation: operation, build: build)
        try deliver(replies.messages, to: each)
    }

    /// The nf_tables ruleset generation ID (`NFT_MSG_GETGEN`, `NFTA_GEN_ID`) of this
    /// socket's namespace. It changes with every committed transaction; pass it to
    /// ``NetlinkBatch/init(generationID:)`` to make a batch conditional on it.
    public func generationID() throws(NetlinkError) -> UInt32 {
        var generation: UInt32?
        try request(type: NftMessage.getGeneration, family: NetfilterFamily.unspecified) { message in
            message.forEachAttribute { attribute in
                if attribute.type == UInt16(NFTA_GEN_ID.rawValue), let value = attribute.bigEndian32 {
                    generation = value
                }
            }
        }
        guard let generation else { throw .malformed("NFT_MSG_GETGEN reply without NFTA_GEN_ID") }
        return generation
    }

    // MARK: Exchange (internal)

    /// The data messages one request produced, and whether the dump was inconsistent.
    private struct Replies {
        var messages = MessageBuffer(capacity: 64 * 1024)
        var interrupted = false
    }

    /// Sends one request and collects the replies that carry its sequence number,
    /// up to the `NLMSG_DONE` or `NLMSG_ERROR` that ends them.
    private func exchange(
        subsystem: NetfilterSubsystem,
        type: UInt16,
        family: UInt8,
        flags: UInt16,
        operation: String,
        build: ((NetlinkMessageWriter) throws(NetlinkError) -> Void)?
    ) throws(NetlinkError) -> Replies {
        try drain()
        let sequence = reserveSequenceNumbers()
        let request = MessageBuffer(capacity: NetlinkBatch.maximumMessageSize)
        let header = NetlinkBatch.putHeader(
            at: request.base,
            type: NetlinkFormat.messageType(subsystem: subsystem, message: type),
            flags: UInt16(NLM_F_REQUEST) | flags,
            sequence: sequence,
            family: family,
            resourceID: 0)
        try build?(NetlinkMessageWriter(header))
        let length = Int(header.pointee.nlmsg_len)
        precondition(length <= request.capacity, "netlink request for \"\(operation)\" overran its buffer")
        request.count = length
        try send([request.bytes])

        var replies = Replies()
        var end: (errno: Int32, kernelMessage: String?)?
        do throws(NetlinkError) {
            try receiveReplies(until: { end != nil }) { (header, message) throws(NetlinkError) in
                guard end == nil, header.sequence == sequence,
                      header.portID == portID || header.portID == 0 else { return }
                if header.has(NLM_F_DUMP_INTR) { replies.interrupted = true }
                if header.isDone {
                    let completion = DumpCompletion(header: header, message: message)
                    end = (completion.errno, completion.kernelMessage)
                } else if header.isError {
                    let reply = try Acknowledgement(header: header, message: message)
                    end = (reply.errno, reply.kernelMessage)
                } else if !header.isControl {
                    replies.messages.append(
                        message, padding: NetlinkFormat.align(message.count) - message.count)
                }
            }
        } catch {
            _ = try? drain()
            throw error
        }
        if let end, end.errno != 0 {
            throw .rejected(operation: operation, errno: end.errno, kernelMessage: end.kernelMessage)
        }
        return replies
    }

    /// Calls `each` with every message in `messages`, turning what it throws into a ``NetlinkError``.
    private func deliver(
        _ messages: MessageBuffer,
        to each: (NetlinkMessageView) throws -> Void
    ) throws(NetlinkError) {
        try forEachMessage(in: messages.bytes) { (_, message) throws(NetlinkError) in
            do {
                try each(NetlinkMessageView(bytes: message))
            } catch let error as NetlinkError {
                throw error
            } catch {
                throw .handler(error)
            }
        }
    }
}
