#if canImport(Glibc)
import Glibc
#endif

/// A growable, heap-allocated byte buffer holding netlink messages back to back.
///
/// Storage for ``NetlinkBatch`` (copy-on-write: the batch copies the buffer before
/// writing when it is shared) and for buffered dump replies. The memory is
/// `malloc`ed, so it is aligned for `nlmsghdr` and attributes; bytes past `count`
/// are uninitialised.
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
        guard let base = malloc(capacity) else {
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
        base = moved
        capacity = newCapacity
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
