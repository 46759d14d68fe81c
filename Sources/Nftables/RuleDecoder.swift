import Netlink
import ServiceModel

/// Turns a rule's kernel expressions back into statements: the inverse of `RuleEncoder`
/// for every statement it writes. Anything else (a rule someone else wrote) is not
/// decoded, and the chain holding it is then rewritten.
struct RuleDecoder {
    let family: TableFamily

    /// Why a rule's expressions are not a rule nftproxy writes.
    struct Unrecognized: Error, Hashable, Sendable, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    /// The selector a `ct` load reads, when it is one nftproxy writes.
    static func ctSelector(_ key: NftCtKey, _ direction: UInt8?) -> Selector? {
        guard let direction else {
            switch key {
            case .state: return .ctState
            case .status: return .ctStatus
            default: return nil
            }
        }
        guard let tuple = Selector.ConntrackDirection(rawValue: direction) else { return nil }
        switch key {
        case .ipv4Source: return .ctAddress(.source, tuple, .ip)
        case .ipv4Destination: return .ctAddress(.destination, tuple, .ip)
        case .ipv6Source: return .ctAddress(.source, tuple, .ip6)
        case .ipv6Destination: return .ctAddress(.destination, tuple, .ip6)
        case .protoSource: return .ctPort(.source, tuple)
        case .protoDestination: return .ctPort(.destination, tuple)
        default: return nil
        }
    }

    func decode(_ expressions: [NftExpression]) throws(Unrecognized) -> Rule {
        var statements: [Statement] = []
        var loads: [Selector] = []            // selectors loaded since the last consuming expression
        var loadSlots: [Int] = []             // the 32-bit slot each load went to
        var loadedBytes: [Int] = []           // how many bytes each load took (payload prefixes)
        var pendingBitwise: (mask: [UInt8], xor: [UInt8])?

        func fail(_ reason: String) -> Unrecognized { Unrecognized(reason: reason) }

        var index = 0
        while index < expressions.count {
            let expression = expressions[index]
            index += 1
            switch expression {
            case .payload(let base, let offset, let length, let destination):
                guard let (selector, full) = payloadSelector(base: base, offset: offset, length: length) else {
                    throw fail("payload base \(base) offset \(offset) length \(length)")
                }
                loadSlots.append(destination.slotIndex)
                loads.append(selector)
                loadedBytes.append(full ? selector.dataType.size : Int(length))
            case .metaLoad(let key, let destination):
                loadSlots.append(destination.slotIndex)
                switch key {
                case .l4proto: loads.append(.l4proto)
                case .mark: loads.append(.mark)
                default: throw fail("meta key \(key)")
                }
                loadedBytes.append(loads.last!.dataType.size)
            case .numgen(let type, let modulus, let offset, let destination):
                guard type == .random, offset == 0 else { throw fail("numgen type \(type) offset \(offset)") }
                loadSlots.append(destination.slotIndex)
                loads.append(.randomNumber(modulus: modulus))
                loadedBytes.append(4)
            case .fib(let result, let flags, let destination):
                guard result == .addressType, flags == .destinationAddress || flags == .sourceAddress else {
                    throw fail("fib result \(result) flags \(flags)")
                }
                loadSlots.append(destination.slotIndex)
                loads.append(flags == .sourceAddress ? .fibSourceType : .fibDestinationType)
                loadedBytes.append(4)
            case .ctLoad(let key, let direction, let destination):
                loadSlots.append(destination.slotIndex)
                guard let selector = Self.ctSelector(key, direction) else {
                    throw fail("ct key \(key) direction \(direction.map(String.init) ?? "none")")
                }
                loads.append(selector)
                loadedBytes.append(selector.dataType.size)
            case .bitwise(_, _, _, let mask, let xor):
                guard loads.count == 1, pendingBitwise == nil else { throw fail("bitwise without a single load") }
                pendingBitwise = (mask, xor)
            case .metaSet(let key, _):
                guard key == .mark, loads == [.mark], let bitwise = pendingBitwise,
                      bitwise.mask.count == 4, bitwise.xor.count == 4 else { throw fail("meta set") }
                let mask = Self.u32(bitwise.mask), xor = Self.u32(bitwise.xor)
                if mask == ~xor {
                    statements.append(.setMarkBits(xor))
                } else if mask == 0xffff_ffff {
                    statements.append(.toggleMarkBits(xor))
                } else {
                    throw fail("meta mark set with mask \(mask) xor \(xor)")
                }
                loads = []; loadedBytes = []; loadSlots = []; pendingBitwise = nil
            case .compare(_, let op, let data):
                guard loads.count == 1 else { throw fail("cmp after \(loads.count) loads") }
                let negated: Bool
                switch op {
                case .equal: negated = false
                case .notEqual: negated = true
                default: throw fail("cmp op \(op)")
                }
                statements.append(try comparison(loads[0], loadedBytes[0], negated: negated, data: data,
                                                 bitwise: pendingBitwise))
                loads = []; loadedBytes = []; loadSlots = []; pendingBitwise = nil
            case .lookup(_, let destination, let set, _, let flags):
                guard flags == 0, !loads.isEmpty, pendingBitwise == nil,
                      zip(loads, loadedBytes).allSatisfy({ $0.dataType.size == $1 }) else {
                    throw fail("lookup of \(set)")
                }
                switch destination {
                case nil:
                    statements.append(.lookup(loads, set: set))
                case NftRegister.verdict?:
                    statements.append(.verdictMap(loads, map: set))
                default:
                    // A map yielding address . port feeds the nat expression that follows.
                    guard index < expressions.count,
                          case .nat(let type, let natFamily, _, _, _) = expressions[index],
                          type == .destination, natFamily == UInt32(family.protocolFamily) else {
                        throw fail("data lookup of \(set) not followed by dnat")
                    }
                    index += 1
                    statements.append(.dnatMap(loads, map: set, family: family))
                }
                loads = []; loadedBytes = []; loadSlots = []
            case .verdict(let code, let chain):
                guard let verdict = Verdict(code: code, chain: chain) else { throw fail("verdict \(code)") }
                statements.append(.verdict(verdict))
            case .masquerade(let flags):
                guard flags & ~NftNatRangeFlag.randomFully == 0 else { throw fail("masquerade flags \(flags)") }
                statements.append(.masquerade(fullyRandom: flags & NftNatRangeFlag.randomFully != 0))
            case .reject(let type, let code):
                switch (type, code) {
                case (.tcpReset, _): statements.append(.reject(.tcpReset))
                case (.icmpUnreachable, family == .ip ? NftRejectCode.icmpPortUnreachable : NftRejectCode.icmpv6PortUnreachable):
                    statements.append(.reject(.portUnreachable))
                default: throw fail("reject type \(type) code \(code)")
                }
            case .counter:
                statements.append(.counter)
            case .nat:
                throw fail("nat without a map lookup")
            case .dynset(let operation, let set, _, let keyRegister, let dataRegister, let timeout, let nested):
                guard operation == .update || (operation == .delete && dataRegister != nil), nested.isEmpty,
                      keyRegister == .slot(0), !loads.isEmpty, pendingBitwise == nil,
                      zip(loads, loadedBytes).allSatisfy({ $0.dataType.size == $1 }) else {
                    throw fail("dynset \(operation) of \(set)")
                }
                // The kernel dumps "no timeout" as a timeout of 0.
                let timeout = timeout == 0 ? nil : timeout
                if let dataRegister {
                    // Key loads first, then the data from its own register (RuleEncoder's layout).
                    guard let split = loadSlots.firstIndex(of: dataRegister.slotIndex), split > 0 else {
                        throw fail("dynset data register of \(set)")
                    }
                    let key = Array(loads[..<split]), data = Array(loads[split...])
                    statements.append(operation == .update
                        ? .updateMap(key, data: data, map: set, timeout: timeout)
                        : .deleteFromMap(key, data: data, map: set))
                } else {
                    statements.append(.updateSet(loads, set: set, timeout: timeout))
                }
                loads = []; loadedBytes = []; loadSlots = []
            case .unknown(let name):
                throw fail("expression \(name)")
            }
        }
        guard loads.isEmpty, pendingBitwise == nil else { throw fail("loads left unused") }
        return Rule(statements)
    }

    private func payloadSelector(base: NftPayloadBase, offset: UInt32, length: UInt32) -> (Selector, Bool)? {
        if base == .transport, offset == 2, length == 2 {
            return (.transportDestinationPort, true)
        }
        guard base == .network else { return nil }
        let size = UInt32(family.addressLength)
        let (source, destination): (UInt32, UInt32) = family == .ip ? (12, 16) : (8, 24)
        guard length >= 1, length <= size else { return nil }
        switch offset {
        case source: return (.address(.source, family), length == size)
        case destination: return (.address(.destination, family), length == size)
        default: return nil
        }
    }

    private func comparison(_ selector: Selector, _ loaded: Int, negated: Bool, data: [UInt8],
                            bitwise: (mask: [UInt8], xor: [UInt8])?) throws(Unrecognized) -> Statement {
        let size = selector.dataType.size
        if let bitwise {
            guard bitwise.xor.allSatisfy({ $0 == 0 }), bitwise.mask.count == loaded, data.count == loaded else {
                throw Unrecognized(reason: "bitwise with xor")
            }
            if case .address = selector {
                // A prefix that is not a whole number of bytes: mask, then compare.
                let length = bitwise.mask.reduce(0) { $0 + $1.nonzeroBitCount }
                guard let network = IPAddress(bytes: data), CIDR(address: network, prefixLength: length).address == network,
                      Self.isContiguous(bitwise.mask) else {
                    throw Unrecognized(reason: "address mask")
                }
                return .prefix(selector, network: network, length: length, negated: negated)
            }
            guard data.allSatisfy({ $0 == 0 }), loaded == 4 else { throw Unrecognized(reason: "flag test") }
            return .bitTest(selector, mask: Self.u32(bitwise.mask), isSet: negated)
        }
        guard data.count == loaded else { throw Unrecognized(reason: "cmp length") }
        if loaded < size {
            // Byte-aligned prefix: only the prefix bytes were loaded.
            guard let network = IPAddress(bytes: data + [UInt8](repeating: 0, count: size - loaded)) else {
                throw Unrecognized(reason: "prefix")
            }
            return .prefix(selector, network: network, length: loaded * 8, negated: negated)
        }
        guard let value = Value.decode(data, as: selector.dataType) else { throw Unrecognized(reason: "value") }
        return .compare(selector, negated: negated, value)
    }

    private static func isContiguous(_ mask: [UInt8]) -> Bool {
        var seenZero = false
        for byte in mask {
            for bit in (0..<8).reversed() {
                let set = byte & (1 << bit) != 0
                if set && seenZero { return false }
                if !set { seenZero = true }
            }
        }
        return true
    }

    static func u32(_ bytes: [UInt8]) -> UInt32 {
        bytes.prefix(4).enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
    }
}

extension Value {
    /// Reads a value of `type` from the bytes the kernel holds.
    static func decode(_ bytes: [UInt8], as type: DataType) -> Value? {
        decode(bytes[...], as: type)
    }

    /// Reads a value of `type` from part of a buffer (a field of a concatenation).
    static func decode(_ bytes: ArraySlice<UInt8>, as type: DataType) -> Value? {
        guard bytes.count == type.size else { return nil }
        let start = bytes.startIndex
        switch type {
        case .ipv4Address, .ipv6Address:
            return IPAddress(bytes: bytes).map(Value.address)
        case .inetProto:
            return .proto(bytes[start])
        case .inetService:
            return .port(UInt16(bytes[start]) << 8 | UInt16(bytes[start + 1]))
        case .mark, .integer32, .ctState, .ctStatus, .fibAddressType:
            return .integer(bytes.prefix(4).enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) })
        }
    }
}
