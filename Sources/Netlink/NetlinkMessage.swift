import CNetfilter

#if canImport(Glibc)
import Glibc
#endif

/// Netlink framing: sizes, alignment, and reading headers, ACKs and attributes out of
/// received bytes. Reads go through raw loads at checked offsets, never past the
/// bytes the kernel delivered.
enum NetlinkFormat {
    /// `NLMSG_ALIGNTO` and `NLA_ALIGNTO`.
    static let alignment = 4

    /// `sizeof(struct nlmsghdr)`.
    static let headerLength = MemoryLayout<nlmsghdr>.size

    /// `sizeof(struct nfgenmsg)`, the header every nfnetlink message starts its payload with.
    static let netfilterHeaderLength = MemoryLayout<nfgenmsg>.size

    /// `sizeof(struct nlmsgerr)`: the error code and the header of the message it answers.
    static let errorLength = MemoryLayout<nlmsgerr>.size

    /// `sizeof(struct nlattr)`.
    static let attributeHeaderLength = MemoryLayout<nlattr>.size

    /// `NLA_TYPE_MASK`: an attribute's type without the nested / byte-order flags.
    static let attributeTypeMask: UInt16 = 0x3FFF

    /// Rounds `length` up to the netlink alignment (`NLMSG_ALIGN`, `NLA_ALIGN`).
    static func align(_ length: Int) -> Int {
        (length + alignment - 1) & ~(alignment - 1)
    }

    /// The nfnetlink message type: subsystem in the high byte, message in the low byte.
    static func messageType(subsystem: NetfilterSubsystem, message: UInt16) -> UInt16 {
        UInt16(subsystem.rawValue) << 8 | (message & 0xFF)
    }
}

/// The fields of a received `nlmsghdr`.
struct MessageHeader {
    /// `nlmsg_len`.
    let length: Int
    /// `nlmsg_type`.
    let type: UInt16
    /// `nlmsg_flags`.
    let flags: UInt16
    /// `nlmsg_seq`.
    let sequence: UInt32
    /// `nlmsg_pid`.
    let portID: UInt32

    /// Reads the header at the start of `message` (at least `NetlinkFormat.headerLength` bytes).
    init(_ message: UnsafeRawBufferPointer) {
        length = Int(message.load(fromByteOffset: 0, as: UInt32.self))
        type = message.load(fromByteOffset: 4, as: UInt16.self)
        flags = message.load(fromByteOffset: 6, as: UInt16.self)
        sequence = message.load(fromByteOffset: 8, as: UInt32.self)
        portID = message.load(fromByteOffset: 12, as: UInt32.self)
    }

    /// Whether `flag` (an `NLM_F_*` value) is set.
    func has(_ flag: Int32) -> Bool { flags & UInt16(flag) != 0 }

    /// `NLMSG_ERROR`: an ACK or an error.
    var isError: Bool { type == UInt16(NLMSG_ERROR) }
    /// `NLMSG_DONE`: the end of a dump.
    var isDone: Bool { type == UInt16(NLMSG_DONE) }
    /// Control messages below `NLMSG_MIN_TYPE` (`NOOP`, `ERROR`, `DONE`, `OVERRUN`).
    var isControl: Bool { type < UInt16(NLMSG_MIN_TYPE) }
}

/// Calls `body` with each netlink message packed in `bytes` (a received datagram, or
/// buffered messages): its header and its bytes (`nlmsg_len` of them).
///
/// - Throws: ``NetlinkError/malformed(_:)`` when a message's length runs past the bytes,
///   or whatever `body` throws.
func forEachMessage(
    in bytes: UnsafeRawBufferPointer,
    _ body: (MessageHeader, UnsafeRawBufferPointer) throws(NetlinkError) -> Void
) throws(NetlinkError) {
    guard let base = bytes.baseAddress else { return }
    var offset = 0
    while bytes.count - offset >= NetlinkFormat.headerLength {
        let rest = UnsafeRawBufferPointer(start: base + offset, count: bytes.count - offset)
        let header = MessageHeader(rest)
        guard header.length >= NetlinkFormat.headerLength, header.length <= rest.count else {
            throw .malformed("message claims \(header.length) bytes at offset \(offset) of \(bytes.count)")
        }
        try body(header, UnsafeRawBufferPointer(start: base + offset, count: header.length))
        offset += NetlinkFormat.align(header.length)
    }
}

/// Calls `body` with the type (flags masked off) and payload of each attribute in `bytes`.
/// Stops at the first attribute whose length does not fit. The one attribute walker of
/// the package: ACKs, nf_tables replies and ctnetlink entries are all read through it.
func forEachAttribute<Failure: Error>(
    in bytes: UnsafeRawBufferPointer,
    _ body: (UInt16, UnsafeRawBufferPointer) throws(Failure) -> Void
) throws(Failure) {
    guard let base = bytes.baseAddress else { return }
    var offset = 0
    while bytes.count - offset >= NetlinkFormat.attributeHeaderLength {
        let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
        let type = bytes.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self) & NetlinkFormat.attributeTypeMask
        guard length >= NetlinkFormat.attributeHeaderLength, length <= bytes.count - offset else { return }
        let payload = UnsafeRawBufferPointer(
            start: base + offset + NetlinkFormat.attributeHeaderLength,
            count: length - NetlinkFormat.attributeHeaderLength)
        try body(type, payload)
        offset += NetlinkFormat.align(length)
    }
}

/// A NUL-terminated string attribute payload as a Swift string.
func attributeString(_ payload: UnsafeRawBufferPointer) -> String {
    String(decoding: payload.prefix { $0 != 0 }, as: UTF8.self)
}

/// An `NLMSG_ERROR` message: the kernel's ACK (errno 0) or error for one request.
struct Acknowledgement {
    /// Sequence number of the message answered.
    let sequence: UInt32
    /// The error as a positive `errno`, or 0 for success.
    let errno: Int32
    /// Extended-ACK text (`NLMSGERR_ATTR_MSG`), if any.
    let kernelMessage: String?

    /// Parses an `NLMSG_ERROR` message (`header.isError`).
    init(header: MessageHeader, message: UnsafeRawBufferPointer) throws(NetlinkError) {
        let errorOffset = NetlinkFormat.headerLength
        guard message.count >= errorOffset + NetlinkFormat.errorLength else {
            throw .malformed("NLMSG_ERROR of \(message.count) bytes is shorter than struct nlmsgerr")
        }
        let code = message.load(fromByteOffset: errorOffset, as: Int32.self)
        sequence = header.sequence
        errno = code < 0 ? -code : code

        var text: String?
        if header.has(NLM_F_ACK_TLVS) {
            // struct nlmsgerr ends with the answered message's header; unless the ACK is
            // capped, the rest of the answered message follows before the TLVs.
            let answeredOffset = errorOffset + MemoryLayout<Int32>.size
            var attributesOffset = errorOffset + NetlinkFormat.errorLength
            if !header.has(NLM_F_CAPPED) {
                let answeredLength = Int(message.load(fromByteOffset: answeredOffset, as: UInt32.self))
                attributesOffset = answeredOffset + NetlinkFormat.align(answeredLength)
            }
            if attributesOffset < message.count {
                forEachAttribute(in: UnsafeRawBufferPointer(rebasing: message[attributesOffset...])) { type, payload in
                    if type == UInt16(NLMSGERR_ATTR_MSG.rawValue) { text = attributeString(payload) }
                }
            }
        }
        kernelMessage = text
    }
}

/// The status an `NLMSG_DONE` message carries at the end of a dump.
struct DumpCompletion {
    /// The dump's error as a positive `errno`, or 0.
    let errno: Int32
    /// Extended-ACK text, if any.
    let kernelMessage: String?

    /// Parses an `NLMSG_DONE` message (`header.isDone`); one without a status means success.
    init(header: MessageHeader, message: UnsafeRawBufferPointer) {
        let statusOffset = NetlinkFormat.headerLength
        guard message.count >= statusOffset + MemoryLayout<Int32>.size else {
            errno = 0
            kernelMessage = nil
            return
        }
        let code = message.load(fromByteOffset: statusOffset, as: Int32.self)
        errno = code < 0 ? -code : code
        var text: String?
        let attributesOffset = statusOffset + MemoryLayout<Int32>.size
        if header.has(NLM_F_ACK_TLVS), attributesOffset < message.count {
            forEachAttribute(in: UnsafeRawBufferPointer(rebasing: message[attributesOffset...])) { type, payload in
                if type == UInt16(NLMSGERR_ATTR_MSG.rawValue) { text = attributeString(payload) }
            }
        }
        kernelMessage = text
    }
}
