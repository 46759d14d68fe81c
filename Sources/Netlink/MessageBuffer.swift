import CNetfilter
#if canImport(Glibc)
import Glibc
#endif

/// A growable, heap-allocated byte buffer holding netlink messages back to back.
///
/// Storage for ``NetlinkBatch`` (copy-on-write: the batch copies the buffer before
/// writing when it is shared) and for buffered dump replies. The memory is
/// `malloc`ed, so it is aligned for `nlmsghdr` and attributes; it is zeroed when
/// allocated and when it grows, so the padding libmnl leaves between attributes is
/// zero rather than old heap contents.
final class MessageBuffer: @unchecked Sendable {
    // @unchecked Sendable: the buffer is only mutated through a uniquely referenced
    // instance (NetlinkBatch copies it first otherwise), so sharing it between
    // threads only ever shares reads.

    /// Start of the storage.
    private(set) var base: UnsafeMutableRawPointer

    /// Allocated bytes.
    private(set) var capacity: Int

    /// Bytes in use, from `base`.
    var count: Int = 0

    /// A buffer with room for `capacity` bytes.
    init(capacity: Int) {
        let capacity = max(capacity, 64)
        guard let base = calloc(capacity, 1) else {
            fatalError("out of memory allocating a \(capacity)-byte netlink buffer")
        }
        self.base = base
        self.capacity = capacity
    }

    deinit {
        free(base)
    }

    /// The bytes in use.
    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: count)
    }

    /// The first free byte, `base + count`.
    var end: UnsafeMutableRawPointer { base + count }

    /// Makes sure at least `additional` bytes are free past `count`, growing the
    /// storage geometrically. Growing moves the storage: pointers into it from
    /// before the call are invalid afterwards.
    func reserve(additional: Int) {
        let needed = count + additional
        guard needed > capacity else { return }
        let newCapacity = max(needed, capacity * 2)
        guard let moved = realloc(base, newCapacity) else {
            fatalError("out of memory growing a netlink buffer to \(newCapacity) bytes")
        }
        (moved + capacity).initializeMemory(as: UInt8.self, repeating: 0, count: newCapacity - capacity)
        base = moved
        capacity = newCapacity
    }

    /// Appends one nfnetlink message: writes its netlink and `nfgenmsg` headers, lets
    /// `build` add the payload, checks the size and pads it to the netlink alignment.
    /// Returns the offset where the message starts. If `build` throws, nothing is appended.
    ///
    /// - Parameter describe: names the message in the message of a violated precondition.
    func appendMessage<Failure: Error>(
        type: UInt16, flags: UInt16, sequence: UInt32, family: UInt8, maximumSize: Int,
        describe: () -> String,
        build: (UnsafeMutablePointer<nlmsghdr>) throws(Failure) -> Void
    ) throws(Failure) -> Int {
        reserve(additional: maximumSize)
        let room = capacity - count
        let header = NetlinkBatch.putHeader(
            at: end, type: type, flags: flags, sequence: sequence, family: family, resourceID: 0)
        try build(header)
        let length = Int(header.pointee.nlmsg_len)
        if length > room {
            fatalError("netlink message for \(describe()) overran its buffer (\(length) bytes)")
        }
        precondition(length <= maximumSize,
                     "netlink message for \(describe()) is \(length) bytes, over the limit of \(maximumSize)")
        precondition(length >= NetlinkFormat.headerLength + NetlinkFormat.netfilterHeaderLength,
                     "netlink message for \(describe()) shrank below its headers")
        let padded = NetlinkFormat.align(length)
        (end + length).initializeMemory(as: UInt8.self, repeating: 0, count: padded - length)
        let offset = count
        count += padded
        return offset
    }

    /// Appends a copy of `bytes`, followed by `padding` zero bytes.
    func append(_ bytes: UnsafeRawBufferPointer, padding: Int = 0) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(additional: bytes.count + padding)
        end.copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
        end.initializeMemory(as: UInt8.self, repeating: 0, count: padding)
        count += padding
    }

    /// An independent copy with the same bytes in use and at least `reserving` free bytes.
    func copy(reserving additional: Int = 0) -> MessageBuffer {
        let copy = MessageBuffer(capacity: count + additional)
        copy.append(bytes)
        return copy
    }
}
