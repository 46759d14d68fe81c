import CNetfilter

/// Appends attributes to a netlink message being built: the payload of a
/// ``NetlinkBatch`` operation or a ``NetlinkRequestList`` request.
///
/// A writer is only valid inside the `build` closure that received it. Its message
/// has room for the ``NetlinkBatch/maximumMessageSize`` or
/// ``NetlinkRequestList/maximumMessageSize`` bytes the container reserved.
public struct NetlinkMessageWriter {
    /// The message, whose `nlmsg_len` each attribute extends.
    let header: UnsafeMutablePointer<nlmsghdr>

    init(_ header: UnsafeMutablePointer<nlmsghdr>) { self.header = header }

    /// Bytes written so far, headers included.
    public var length: Int { Int(header.pointee.nlmsg_len) }

    /// Appends an attribute with `bytes` as its payload.
    public func put(_ type: UInt16, bytes: [UInt8]) {
        bytes.withUnsafeBytes { mnl_attr_put(header, type, $0.count, $0.baseAddress) }
    }

    /// Appends a one-byte attribute.
    public func put(_ type: UInt16, u8 value: UInt8) {
        mnl_attr_put_u8(header, type, value)
    }

    /// Appends a 16-bit attribute in network byte order.
    public func put(_ type: UInt16, bigEndian16 value: UInt16) {
        mnl_attr_put_u16(header, type, value.bigEndian)
    }

    /// Appends a 32-bit attribute in network byte order.
    public func put(_ type: UInt16, bigEndian32 value: UInt32) {
        mnl_attr_put_u32(header, type, value.bigEndian)
    }

    /// Appends a 32-bit attribute exactly as `value` lies in memory (opaque values
    /// read with ``NetlinkAttribute/raw32`` and sent back, such as `CTA_ID`).
    public func put(_ type: UInt16, raw32 value: UInt32) {
        mnl_attr_put_u32(header, type, value)
    }

    /// Appends a NUL-terminated string attribute.
    public func put(_ type: UInt16, string: String) {
        mnl_attr_put_strz(header, type, string)
    }

    /// Appends a nested attribute of `type` whose members `body` writes.
    public func nest<Failure: Error>(_ type: UInt16, _ body: (NetlinkMessageWriter) throws(Failure) -> Void) throws(Failure) {
        let start = mnl_attr_nest_start(header, type)
        try body(self)
        mnl_attr_nest_end(header, start)
    }
}

extension NetlinkMessageWriter {
    /// Builds one stand-alone nfnetlink message (headers with `subsystem`, `message`,
    /// `family`; attributes from `build`) and returns its bytes: for tests of parsers,
    /// and for anything that needs the wire form of a message without a socket.
    public static func message(
        subsystem: NetfilterSubsystem, message: UInt16, family: UInt8, flags: UInt16 = 0,
        _ build: (NetlinkMessageWriter) -> Void
    ) -> [UInt8] {
        let buffer = MessageBuffer(capacity: NetlinkRequestList.maximumMessageSize)
        let offset = buffer.appendMessage(
            type: NetlinkFormat.messageType(subsystem: subsystem, message: message),
            flags: flags, sequence: 0, family: family,
            maximumSize: NetlinkRequestList.maximumMessageSize,
            describe: { "a stand-alone message" },
            build: { (header) -> Void in build(NetlinkMessageWriter(header)) })
        let length = Int(buffer.base.load(fromByteOffset: offset, as: UInt32.self))
        return Array(UnsafeRawBufferPointer(start: buffer.base + offset, count: length))
    }
}
