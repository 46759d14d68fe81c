import CNetfilter

#if canImport(Glibc)
import Glibc
#endif

/// One nf_tables transaction: messages the kernel applies all together or not at all.
///
/// Build a batch by appending operations, each a named nf_tables message whose payload
/// a closure fills (with a ``NetlinkMessageWriter``, for example
/// ``NetlinkMessageWriter/putTable(_:)``), then hand it
/// to ``NetlinkSocket/commit(_:)``. The commit frames it with `NFNL_MSG_BATCH_BEGIN` /
/// `NFNL_MSG_BATCH_END`, sends it as one datagram and reads every ACK; if the kernel
/// refuses any operation it aborts the whole transaction and the commit throws
/// ``NetlinkError/rejected(operation:errno:kernelMessage:)`` naming that operation.
///
/// ```swift
/// var batch = NetlinkBatch(generationID: try socket.generationID())
/// try batch.append("add table ip nftproxy", type: NftMessage.newTable,
///                  family: NetfilterFamily.ipv4, flags: NetlinkFlags.create) { message in
///     try message.putTable(NftTable(name: "nftproxy", flags: 0))
/// }
/// try socket.commit(batch)
/// ```
///
/// The batch is a value: copies are independent (its buffer is copied on write).
/// It grows as needed; batches of hundreds of thousands of messages (tens of MB) are fine.
public struct NetlinkBatch: Sendable {
    /// The most bytes one message may take, header included. Before each
    /// ``append(_:type:family:flags:build:)`` the batch makes sure this much space is
    /// free, because the attribute writers (libnftnl's and libmnl's) do not check bounds.
    ///
    /// No netlink attribute can exceed 64 KiB (`nla_len` is 16 bits), so messages
    /// built by nf_tables encoders stay well below this; split large set element
    /// lists into several messages.
    public static let maximumMessageSize = 256 * 1024

    /// The ruleset generation this batch was computed against, or nil to apply it
    /// regardless of concurrent changes. When set, the kernel refuses the batch if the
    /// ruleset changed since (see ``NetlinkError/generationChanged``). A generation
    /// ID of 0 means "not checked" to the kernel.
    public let generationID: UInt32?

    /// The name of each appended operation, in order; errors name them.
    public private(set) var operations: [String] = []

    /// The operations' messages, back to back.
    private var buffer: MessageBuffer

    /// Sequence number of the batch-begin message; operation `i` carries
    /// `firstSequence + 1 + i`, the batch-end message the one after the last operation.
    let firstSequence: UInt32

    /// An empty batch, optionally guarded by the ruleset generation it was computed against.
    public init(generationID: UInt32? = nil) {
        self.generationID = generationID
        self.buffer = MessageBuffer(capacity: 0)
        self.firstSequence = UInt32.random(in: 1...UInt32.max / 2)
    }

    /// Appends one nf_tables message.
    ///
    /// The batch writes the netlink header (type `NFNL_SUBSYS_NFTABLES << 8 | type`,
    /// flags `NLM_F_REQUEST | NLM_F_ACK | flags`, a sequence number of its own) and the
    /// `nfgenmsg` header with `family`; `build` then appends the payload attributes
    /// through its ``NetlinkMessageWriter``. The message must stay within
    /// ``maximumMessageSize`` bytes.
    ///
    /// If `build` throws, nothing is appended and the error is rethrown.
    ///
    /// - Parameters:
    ///   - operation: What the message does, for errors: `add rule ip nftproxy services`.
    ///   - type: The nf_tables message, ``NftMessage/newTable``, ``NftMessage/deleteElements``, …
    ///   - family: The protocol family, ``NetfilterFamily/ipv4``, ``NetfilterFamily/ipv6``, …
    ///   - flags: ``NetlinkFlags/create``, ``NetlinkFlags/append``, …
    ///   - build: Fills the payload after the `nfgenmsg` header; the writer is valid
    ///     only during the call.
    public mutating func append<Failure: Error>(
        _ operation: String,
        type: UInt16,
        family: UInt8,
        flags: UInt16 = 0,
        build: (NetlinkMessageWriter) throws(Failure) -> Void
    ) throws(Failure) {
        if !isKnownUniquelyReferenced(&buffer) {
            buffer = buffer.copy(reserving: Self.maximumMessageSize)
        }
        _ = try buffer.appendMessage(
            type: NetlinkFormat.messageType(subsystem: .nftables, message: type),
            flags: UInt16(NLM_F_REQUEST | NLM_F_ACK) | flags,
            sequence: sequence(ofOperation: operations.count),
            family: family,
            maximumSize: Self.maximumMessageSize,
            describe: { "\"\(operation)\"" },
            build: { (header) throws(Failure) in try build(NetlinkMessageWriter(header)) })
        operations.append(operation)
    }

    /// Number of operations appended (batch begin and end not counted).
    public var operationCount: Int { operations.count }

    /// Whether no operation was appended; committing an empty batch sends nothing.
    public var isEmpty: Bool { operations.isEmpty }

    /// Bytes ``NetlinkSocket/commit(_:)`` sends: the operations plus the batch begin and end messages.
    public var byteCount: Int {
        beginMessageLength + buffer.count + Self.endMessageLength
    }

    // MARK: Framing (internal)

    /// Sequence number of operation `index`.
    func sequence(ofOperation index: Int) -> UInt32 {
        firstSequence &+ 1 &+ UInt32(truncatingIfNeeded: index)
    }

    /// The operation index a reply's sequence number refers to, or nil.
    func operationIndex(ofSequence sequence: UInt32) -> Int? {
        let offset = sequence &- firstSequence &- 1
        return Int(offset) < operations.count ? Int(offset) : nil
    }

    /// Sequence number of the batch-end message.
    var endSequence: UInt32 { sequence(ofOperation: operations.count) }

    /// Calls `body` with the operations' messages (without begin and end).
    func withMessageBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        defer { withExtendedLifetime(buffer) {} }
        return try body(buffer.bytes)
    }

    /// A copy of the operations' messages with `NLM_F_ACK` cleared, for a commit that
    /// cannot receive one ACK per operation: the kernel then answers only errors.
    func messagesWithoutAcknowledgementRequests() -> MessageBuffer {
        let copy = buffer.copy()
        let acknowledge = UInt16(NLM_F_ACK)
        var offset = 0
        while offset + NetlinkFormat.headerLength <= copy.count {
            let length = Int(copy.base.load(fromByteOffset: offset, as: UInt32.self))
            guard length >= NetlinkFormat.headerLength else { break }
            let flags = copy.base.load(fromByteOffset: offset + 6, as: UInt16.self)
            copy.base.storeBytes(of: flags & ~acknowledge, toByteOffset: offset + 6, as: UInt16.self)
            offset += NetlinkFormat.align(length)
        }
        return copy
    }

    /// Length of the begin message: headers, plus the `NFNL_BATCH_GENID` attribute if any.
    private var beginMessageLength: Int {
        let base = NetlinkFormat.headerLength + NetlinkFormat.netfilterHeaderLength
        return generationID == nil ? base : base + NetlinkFormat.attributeHeaderLength + MemoryLayout<UInt32>.size
    }

    /// Length of the end message.
    private static let endMessageLength = NetlinkFormat.headerLength + NetlinkFormat.netfilterHeaderLength

    /// The `NFNL_MSG_BATCH_BEGIN` message for nf_tables, with the generation ID if any.
    func beginMessage() -> MessageBuffer {
        let message = MessageBuffer(capacity: beginMessageLength)
        let header = Self.putHeader(
            at: message.base,
            type: UInt16(NFNL_MSG_BATCH_BEGIN),
            flags: UInt16(NLM_F_REQUEST),
            sequence: firstSequence,
            family: UInt8(AF_UNSPEC),
            resourceID: UInt16(NFNL_SUBSYS_NFTABLES))
        if let generationID {
            mnl_attr_put_u32(header, UInt16(NFNL_BATCH_GENID.rawValue), generationID.bigEndian)
        }
        message.count = Int(header.pointee.nlmsg_len)
        assert(message.count == beginMessageLength)
        return message
    }

    /// The `NFNL_MSG_BATCH_END` message.
    func endMessage() -> MessageBuffer {
        let message = MessageBuffer(capacity: Self.endMessageLength)
        let header = Self.putHeader(
            at: message.base,
            type: UInt16(NFNL_MSG_BATCH_END),
            flags: UInt16(NLM_F_REQUEST),
            sequence: endSequence,
            family: UInt8(AF_UNSPEC),
            resourceID: UInt16(NFNL_SUBSYS_NFTABLES))
        message.count = Int(header.pointee.nlmsg_len)
        return message
    }

    /// Writes a netlink header and an `nfgenmsg` header at `address` and returns the
    /// message, whose `nlmsg_len` covers both. `resourceID` is in host order.
    static func putHeader(
        at address: UnsafeMutableRawPointer,
        type: UInt16,
        flags: UInt16,
        sequence: UInt32,
        family: UInt8,
        resourceID: UInt16
    ) -> UnsafeMutablePointer<nlmsghdr> {
        let header = mnl_nlmsg_put_header(address)!
        header.pointee.nlmsg_type = type
        header.pointee.nlmsg_flags = flags
        header.pointee.nlmsg_seq = sequence
        let extra = mnl_nlmsg_put_extra_header(header, NetlinkFormat.netfilterHeaderLength)!
        let netfilter = extra.bindMemory(to: nfgenmsg.self, capacity: 1)
        netfilter.pointee.nfgen_family = family
        netfilter.pointee.version = UInt8(NFNETLINK_V0)
        netfilter.pointee.res_id = resourceID.bigEndian
        return header
    }
}
