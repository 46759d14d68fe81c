/// The text forms of addresses that nftproxy accepts, and nothing else.
///
/// IPv4: four decimal octets 0-255 separated by dots, each without leading zeros (`010`
/// would be octal to some readers and decimal to others, so it is refused, as Kubernetes
/// refuses it for new objects).
///
/// IPv6 (RFC 4291 section 2.2): eight groups of one to four hex digits separated by
/// colons; one run of groups may be replaced by `::`; the last two groups may instead be
/// written as a dotted quad as above (`::ffff:192.0.2.1`, `64:ff9b::198.51.100.7`). No
/// signs, no zone suffix (`%eth0`), no brackets, no whitespace.
enum AddressText {
    /// The four bytes of a dotted quad, or nil.
    static func parseIPv4<Bytes: Collection<UInt8>>(_ text: Bytes) -> UInt32? {
        var value: UInt32 = 0
        var octets = 0
        var octet: UInt32 = 0
        var digits = 0
        for byte in text {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if digits == 1 && octet == 0 { return nil }  // leading zero
                octet = octet * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                if octet > 255 { return nil }
            case UInt8(ascii: "."):
                guard digits > 0, octets < 3 else { return nil }
                value = value << 8 | octet
                octets += 1
                octet = 0
                digits = 0
            default:
                return nil
            }
        }
        guard digits > 0, octets == 3 else { return nil }
        return value << 8 | octet
    }

    /// The sixteen bytes of an IPv6 address as (high, low) 64-bit words, or nil.
    static func parseIPv6(_ text: [UInt8]) -> (UInt64, UInt64)? {
        let colon = UInt8(ascii: ":")
        var groups: [UInt16] = []
        groups.reserveCapacity(8)
        var gap: Int?  // index in `groups` where `::` stands
        var index = text.startIndex
        if text.first == colon {
            // A leading colon only as part of `::`.
            guard text.count >= 2, text[1] == colon else { return nil }
            gap = 0
            index = 2
        }
        while index < text.endIndex {
            // One token: hex group, or a dotted quad that must end the text.
            let tokenEnd = text[index...].firstIndex(of: colon) ?? text.endIndex
            let token = text[index..<tokenEnd]
            if token.contains(UInt8(ascii: ".")) {
                guard tokenEnd == text.endIndex, groups.count <= 6, let v4 = parseIPv4(token) else { return nil }
                groups.append(UInt16(truncatingIfNeeded: v4 >> 16))
                groups.append(UInt16(truncatingIfNeeded: v4))
                index = tokenEnd
                break
            }
            guard let group = parseGroup(token), groups.count < 8 else { return nil }
            groups.append(group)
            index = tokenEnd
            if index == text.endIndex { break }
            index += 1  // the colon
            if index < text.endIndex, text[index] == colon {
                guard gap == nil else { return nil }  // `::` at most once
                gap = groups.count
                index += 1
            } else if index == text.endIndex {
                return nil  // a single trailing colon
            }
        }
        if let gap {
            // `::` stands for at least one group of zeros.
            guard groups.count <= 7 else { return nil }
            groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: gap)
        }
        guard groups.count == 8 else { return nil }
        var high: UInt64 = 0, low: UInt64 = 0
        for group in groups[0..<4] { high = high << 16 | UInt64(group) }
        for group in groups[4..<8] { low = low << 16 | UInt64(group) }
        return (high, low)
    }

    /// One to four hex digits.
    private static func parseGroup(_ token: ArraySlice<UInt8>) -> UInt16? {
        guard (1...4).contains(token.count) else { return nil }
        var value: UInt16 = 0
        for byte in token {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt16(digit)
        }
        return value
    }

    /// A prefix length written as decimal digits without leading zeros, at most `limit`.
    static func parsePrefixLength<Bytes: Collection<UInt8>>(_ text: Bytes, limit: Int) -> Int? {
        guard !text.isEmpty, text.count <= 3 else { return nil }
        if text.count > 1 && text.first == UInt8(ascii: "0") { return nil }
        var value = 0
        for byte in text {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value <= limit ? value : nil
    }
}
