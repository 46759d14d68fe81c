import CNetfilter

/// One received nfnetlink message (a dump reply, or bytes a test built), read without
/// copying: its header fields and its attributes.
///
/// A view is only valid inside the closure that received it (``NetlinkSocket/dump(subsystem:type:family:build:each:)``,
/// ``parse(_:_:)``); do not keep it or its attributes.
public struct NetlinkMessageView {
    /// The message's bytes, `nlmsg_len` of them.
    let bytes: UnsafeRawBufferPointer

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Calls `body` with a view of `message` (one complete netlink message), or throws
    /// ``NetlinkError/malformed(_:)`` when it is shorter than the netlink and nfnetlink headers
    /// or than the length its header claims.
    public static func parse<Result, Failure: Error>(
        _ message: [UInt8], _ body: (NetlinkMessageView) throws(Failure) -> Result
    ) throws -> Result {
        try message.withUnsafeBytes { (bytes) throws -> Result in
            guard bytes.count >= NetlinkFormat.headerLength + NetlinkFormat.netfilterHeaderLength else {
                throw NetlinkError.malformed("message of \(bytes.count) bytes is shorter than its headers")
            }
            let length = Int(bytes.loadUnaligned(as: UInt32.self))
            guard length >= NetlinkFormat.headerLength + NetlinkFormat.netfilterHeaderLength, length <= bytes.count else {
                throw NetlinkError.malformed("message claims \(length) bytes of \(bytes.count)")
            }
            return try body(NetlinkMessageView(bytes: UnsafeRawBufferPointer(rebasing: bytes[..<length])))
        }
    }

    /// Total length in bytes (`nlmsg_len`).
    public var length: Int { bytes.count }

    /// `nlmsg_type`: the nfnetlink subsystem in the high byte, the message in the low byte.
    public var type: UInt16 { bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self) }

    /// The message within its subsystem (low byte of ``type``).
    public var message: UInt16 { type & 0xFF }

    /// The nfnetlink subsystem number (high byte of ``type``).
    public var subsystem: UInt8 { UInt8(type >> 8) }

    /// `nfgen_family` of the `nfgenmsg` header, or nil when the message is too short for it.
    public var family: UInt8? {
        bytes.count > NetlinkFormat.headerLength ? bytes[NetlinkFormat.headerLength] : nil
    }

    /// Whether the message is long enough to hold its netlink and nfnetlink headers.
    public var hasNetfilterHeader: Bool {
        bytes.count >= NetlinkFormat.headerLength + NetlinkFormat.netfilterHeaderLength
    }

    /// Calls `body` with each top-level attribute after the `nfgenmsg` header.
    public func forEachAttribute<Failure: Error>(_ body: (NetlinkAttribute) throws(Failure) -> Void) throws(Failure) {
        let start = NetlinkFormat.headerLength + NetlinkFormat.align(NetlinkFormat.netfilterHeaderLength)
        guard bytes.count > start else { return }
        try Netlink.forEachAttribute(in: UnsafeRawBufferPointer(rebasing: bytes[start...])) { (type, payload) throws(Failure) in
            try body(NetlinkAttribute(type: type, payload: payload))
        }
    }

    /// The message as libnftnl's parsers take it.
    var header: UnsafePointer<nlmsghdr> {
        bytes.baseAddress!.assumingMemoryBound(to: nlmsghdr.self)
    }
}

/// One netlink attribute of a received message: its type (nested and byte-order flags
/// masked off) and payload. Valid only while the message it came from is.
public struct NetlinkAttribute {
    /// `nla_type` without `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER`.
    public let type: UInt16

    /// The payload bytes (without the attribute header and padding).
    let payload: UnsafeRawBufferPointer

    /// Payload length in bytes.
    public var count: Int { payload.count }

    /// A copy of the payload.
    public var bytes: [UInt8] { Array(payload) }

    /// The first payload byte, or nil when the payload is empty.
    public var u8: UInt8? { payload.count >= 1 ? payload[0] : nil }

    /// A 16-bit payload in network byte order, or nil when it is shorter.
    public var bigEndian16: UInt16? {
        payload.count >= 2 ? UInt16(bigEndian: payload.loadUnaligned(as: UInt16.self)) : nil
    }

    /// A 32-bit payload in network byte order, or nil when it is shorter.
    public var bigEndian32: UInt32? {
        payload.count >= 4 ? UInt32(bigEndian: payload.loadUnaligned(as: UInt32.self)) : nil
    }

    /// A 32-bit payload exactly as its bytes lie in memory (opaque values such as `CTA_ID`).
    public var raw32: UInt32? {
        payload.count >= 4 ? payload.loadUnaligned(as: UInt32.self) : nil
    }

    /// A NUL-terminated string payload.
    public var string: String { attributeString(payload) }

    /// Calls `body` with each attribute nested in this one.
    public func forEachNested<Failure: Error>(_ body: (NetlinkAttribute) throws(Failure) -> Void) throws(Failure) {
        try Netlink.forEachAttribute(in: payload) { (type, payload) throws(Failure) in
            try body(NetlinkAttribute(type: type, payload: payload))
        }
    }
}
