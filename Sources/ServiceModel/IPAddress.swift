/// An IPv4 or IPv6 address held as network-order bytes.
///
/// Parsing is strict: dotted quads with no leading zeros for IPv4, RFC 4291 text
/// (with `::` compression and an optional dotted quad as the last 32 bits) for IPv6; see
/// ``AddressText``.
public struct IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    // The address bytes, big-endian, left-aligned in 128 bits (IPv4 in the top 32 bits of
    // `high`): fixed-size storage, so comparing and hashing addresses never touches the heap.
    private let high: UInt64
    private let low: UInt64
    public let family: IPFamily

    /// 4 bytes for IPv4, 16 bytes for IPv6, network byte order.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(family.addressLength)
        appendBytes(to: &out)
        return out
    }

    /// Appends the address bytes (network order) to `buffer` without an array of their own.
    public func appendBytes(to buffer: inout [UInt8]) {
        withUnsafeBytes(of: high.bigEndian) { buffer.append(contentsOf: $0.prefix(family == .v4 ? 4 : 8)) }
        if family == .v6 {
            withUnsafeBytes(of: low.bigEndian) { buffer.append(contentsOf: $0) }
        }
    }

    public init?(bytes: [UInt8]) {
        self.init(bytes: bytes[...])
    }

    /// From 4 or 16 bytes in network order, without copying them out of a larger buffer.
    public init?(bytes: ArraySlice<UInt8>) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        var words: (UInt64, UInt64) = (0, 0)
        for (index, byte) in zip(0..., bytes) {
            if index < 8 {
                words.0 |= UInt64(byte) << (56 - 8 * UInt64(index))
            } else {
                words.1 |= UInt64(byte) << (56 - 8 * UInt64(index - 8))
            }
        }
        (high, low) = words
        family = bytes.count == 4 ? .v4 : .v6
    }

    /// Parses the text forms described at ``AddressText``: a dotted quad (no leading zeros)
    /// or RFC 4291 IPv6 text; nil for anything else.
    public init?(_ text: String) {
        let utf8 = text.utf8
        if utf8.contains(UInt8(ascii: ":")) {
            guard let (high, low) = AddressText.parseIPv6(Array(utf8)) else { return nil }
            self.init(high: high, low: low, family: .v6)
        } else {
            // A dotted quad is read in place, without an array of its bytes.
            let parsed = utf8.withContiguousStorageIfAvailable { AddressText.parseIPv4($0) }
            guard let value = parsed ?? AddressText.parseIPv4(utf8) else { return nil }
            self.init(high: UInt64(value) << 32, low: 0, family: .v4)
        }
    }

    private init(high: UInt64, low: UInt64, family: IPFamily) {
        self.high = high
        self.low = low
        self.family = family
    }

    /// Canonical text: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run compressed).
    public var description: String {
        if family == .v4 {
            // Written digit by digit: the daemon formats 100,000 endpoints at once.
            var text: [UInt8] = []
            text.reserveCapacity(15)
            for shift in stride(from: 56, through: 32, by: -8) {
                let octet = UInt8(truncatingIfNeeded: high >> UInt64(shift))
                if shift != 56 { text.append(UInt8(ascii: ".")) }
                if octet >= 100 { text.append(UInt8(ascii: "0") + octet / 100) }
                if octet >= 10 { text.append(UInt8(ascii: "0") + octet / 10 % 10) }
                text.append(UInt8(ascii: "0") + octet % 10)
            }
            return String(decoding: text, as: UTF8.self)
        }
        let words = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
        var bestStart = -1, bestLength = 0, runStart = -1
        for i in 0...8 {
            if i < 8 && words[i] == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength { bestStart = runStart; bestLength = i - runStart }
                runStart = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        func hex(_ range: Range<Int>) -> String { range.map { String(words[$0], radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    /// IPv4 before IPv6, then by value.
    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        if lhs.family != rhs.family { return lhs.family == .v4 }
        return (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// True for 127.0.0.0/8 and ::1.
    public var isLoopback: Bool {
        family == .v4 ? high >> 56 == 127 : (high == 0 && low == 1)
    }
}

/// An address family; nftproxy programs one nftables table per family.
public enum IPFamily: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case v4 = "IPv4"
    case v6 = "IPv6"
    public var description: String { rawValue }
    public var addressLength: Int { self == .v4 ? 4 : 16 }
}

/// An address prefix such as `198.19.0.0/16`. The address is stored with host bits cleared.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    public var family: IPFamily { address.family }

    /// Parses `address/length`: an address as ``IPAddress/init(_:)`` reads it and a decimal
    /// prefix length without sign or leading zeros, at most 32 (IPv4) or 128 (IPv6).
    public init?(_ text: String) {
        let utf8 = Array(text.utf8)
        guard let slash = utf8.firstIndex(of: UInt8(ascii: "/")),
              let address = IPAddress(String(decoding: utf8[..<slash], as: UTF8.self)),
              let length = AddressText.parsePrefixLength(utf8[(slash + 1)...], limit: address.family.addressLength * 8)
        else { return nil }
        self.init(address: address, prefixLength: length)
    }

    public init(address: IPAddress, prefixLength: Int) {
        precondition(prefixLength >= 0 && prefixLength <= address.bytes.count * 8)
        var masked = address.bytes
        for i in masked.indices {
            let bitsHere = max(0, min(8, prefixLength - i * 8))
            masked[i] &= bitsHere == 8 ? 0xff : UInt8(truncatingIfNeeded: 0xff << (8 - bitsHere))
        }
        self.address = IPAddress(bytes: masked)!
        self.prefixLength = prefixLength
    }

    public func contains(_ other: IPAddress) -> Bool {
        other.family == family && CIDR(address: other, prefixLength: prefixLength).address == address
    }

    public var description: String { "\(address)/\(prefixLength)" }

    /// The highest address of the range (every host bit set).
    public var lastAddress: IPAddress {
        var bytes = address.bytes
        for i in bytes.indices {
            let hostBits = 8 - max(0, min(8, prefixLength - i * 8))
            bytes[i] |= UInt8(truncatingIfNeeded: (1 << hostBits) - 1)
        }
        return IPAddress(bytes: bytes)!
    }

    /// The CIDR whose range is exactly `first`...`last`, if there is one.
    public init?(first: IPAddress, last: IPAddress) {
        guard first.family == last.family else { return nil }
        for length in 0...(first.bytes.count * 8) {
            let candidate = CIDR(address: first, prefixLength: length)
            if candidate.address == first && candidate.lastAddress == last {
                self = candidate
                return
            }
        }
        return nil
    }
}
