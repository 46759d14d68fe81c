import CNetfilter
import ServiceModel

/// One kernel expression, as libnftnl parsed it from a rule dump.
enum KernelExpression: Equatable {
    case payload(base: UInt32, offset: UInt32, length: UInt32, destination: UInt32)
    case metaLoad(key: UInt32, destination: UInt32)
    case metaSet(key: UInt32, source: UInt32)
    case numgen(destination: UInt32, modulus: UInt32, type: UInt32, offset: UInt32)
    case fib(destination: UInt32, result: UInt32, flags: UInt32)
    case ct(key: UInt32, destination: UInt32)
    case compare(source: UInt32, op: UInt32, data: [UInt8])
    case bitwise(source: UInt32, destination: UInt32, mask: [UInt8], xor: [UInt8])
    case lookup(source: UInt32, destination: UInt32?, set: String, flags: UInt32)
    case immediate(verdict: Int32, chain: String?)
    case nat(type: UInt32, family: UInt32, addressRegister: UInt32?, protoRegister: UInt32?, flags: UInt32)
    case masquerade(flags: UInt32)
    case reject(type: UInt32, code: UInt8)
    case counter
    case other(String)

    /// Reads one libnftnl expression.
    init(_ expression: OpaquePointer) {
        func u32(_ attribute: Int) -> UInt32 { nftnl_expr_get_u32(expression, UInt16(attribute)) }
        func has(_ attribute: Int) -> Bool { nftnl_expr_is_set(expression, UInt16(attribute)) }
        func bytes(_ attribute: Int) -> [UInt8] {
            var length: UInt32 = 0
            guard let pointer = nftnl_expr_get(expression, UInt16(attribute), &length) else { return [] }
            return Array(UnsafeRawBufferPointer(start: pointer, count: Int(length)))
        }
        func string(_ attribute: Int) -> String? {
            guard has(attribute), let pointer = nftnl_expr_get_str(expression, UInt16(attribute)) else { return nil }
            return String(cString: pointer)
        }
        let name = string(NFTNL_EXPR_NAME) ?? ""
        switch name {
        case "payload":
            self = .payload(base: u32(NFTNL_EXPR_PAYLOAD_BASE), offset: u32(NFTNL_EXPR_PAYLOAD_OFFSET),
                            length: u32(NFTNL_EXPR_PAYLOAD_LEN), destination: u32(NFTNL_EXPR_PAYLOAD_DREG))
        case "meta":
            if has(NFTNL_EXPR_META_SREG) {
                self = .metaSet(key: u32(NFTNL_EXPR_META_KEY), source: u32(NFTNL_EXPR_META_SREG))
            } else {
                self = .metaLoad(key: u32(NFTNL_EXPR_META_KEY), destination: u32(NFTNL_EXPR_META_DREG))
            }
        case "numgen":
            self = .numgen(destination: u32(NFTNL_EXPR_NG_DREG), modulus: u32(NFTNL_EXPR_NG_MODULUS),
                           type: u32(NFTNL_EXPR_NG_TYPE), offset: u32(NFTNL_EXPR_NG_OFFSET))
        case "fib":
            self = .fib(destination: u32(NFTNL_EXPR_FIB_DREG), result: u32(NFTNL_EXPR_FIB_RESULT),
                        flags: u32(NFTNL_EXPR_FIB_FLAGS))
        case "ct":
            self = has(NFTNL_EXPR_CT_SREG) ? .other("ct set") : .ct(key: u32(NFTNL_EXPR_CT_KEY), destination: u32(NFTNL_EXPR_CT_DREG))
        case "cmp":
            self = .compare(source: u32(NFTNL_EXPR_CMP_SREG), op: u32(NFTNL_EXPR_CMP_OP), data: bytes(NFTNL_EXPR_CMP_DATA))
        case "bitwise":
            self = .bitwise(source: u32(NFTNL_EXPR_BITWISE_SREG), destination: u32(NFTNL_EXPR_BITWISE_DREG),
                            mask: bytes(NFTNL_EXPR_BITWISE_MASK), xor: bytes(NFTNL_EXPR_BITWISE_XOR))
        case "lookup":
            self = .lookup(source: u32(NFTNL_EXPR_LOOKUP_SREG),
                           destination: has(NFTNL_EXPR_LOOKUP_DREG) ? u32(NFTNL_EXPR_LOOKUP_DREG) : nil,
                           set: string(NFTNL_EXPR_LOOKUP_SET) ?? "", flags: u32(NFTNL_EXPR_LOOKUP_FLAGS))
        case "immediate":
            if has(NFTNL_EXPR_IMM_VERDICT) {
                self = .immediate(verdict: Int32(bitPattern: u32(NFTNL_EXPR_IMM_VERDICT)), chain: string(NFTNL_EXPR_IMM_CHAIN))
            } else {
                self = .other("immediate data")
            }
        case "nat":
            self = .nat(type: u32(NFTNL_EXPR_NAT_TYPE), family: u32(NFTNL_EXPR_NAT_FAMILY),
                        addressRegister: has(NFTNL_EXPR_NAT_REG_ADDR_MIN) ? u32(NFTNL_EXPR_NAT_REG_ADDR_MIN) : nil,
                        protoRegister: has(NFTNL_EXPR_NAT_REG_PROTO_MIN) ? u32(NFTNL_EXPR_NAT_REG_PROTO_MIN) : nil,
                        flags: u32(NFTNL_EXPR_NAT_FLAGS))
        case "masq":
            self = .masquerade(flags: u32(NFTNL_EXPR_MASQ_FLAGS))
        case "reject":
            self = .reject(type: u32(NFTNL_EXPR_REJECT_TYPE), code: nftnl_expr_get_u8(expression, UInt16(NFTNL_EXPR_REJECT_CODE)))
        case "counter":
            self = .counter
        default:
            self = .other(name)
        }
    }
}

/// Turns a rule's kernel expressions back into statements: the inverse of `RuleEncoder`
/// for every statement it writes. Anything else (a rule someone else wrote) is not
/// decoded, and the chain holding it is then rewritten.
struct RuleDecoder {
    let family: TableFamily

    struct Unrecognized: Error { let reason: String }

    func decode(_ expressions: [KernelExpression]) throws(Unrecognized) -> Rule {
        var statements: [Statement] = []
        var loads: [Selector] = []            // selectors loaded since the last consuming expression
        var loadedBytes: [Int] = []           // how many bytes each load took (payload prefixes)
        var pendingBitwise: (mask: [UInt8], xor: [UInt8])?

        func fail(_ reason: String) -> Unrecognized { Unrecognized(reason: reason) }

        var index = 0
        while index < expressions.count {
            let expression = expressions[index]
            index += 1
            switch expression {
            case .payload(let base, let offset, let length, _):
                guard let (selector, full) = payloadSelector(base: base, offset: offset, length: length) else {
                    throw fail("payload base \(base) offset \(offset) length \(length)")
                }
                loads.append(selector)
                loadedBytes.append(full ? selector.dataType.size : Int(length))
            case .metaLoad(let key, _):
                switch key {
                case UInt32(NFT_META_L4PROTO.rawValue): loads.append(.l4proto)
                case UInt32(NFT_META_MARK.rawValue): loads.append(.mark)
                default: throw fail("meta key \(key)")
                }
                loadedBytes.append(loads.last!.dataType.size)
            case .numgen(_, let modulus, let type, let offset):
                guard type == UInt32(NFT_NG_RANDOM.rawValue), offset == 0 else { throw fail("numgen type \(type)") }
                loads.append(.randomNumber(modulus: modulus))
                loadedBytes.append(4)
            case .fib(_, let result, let flags):
                guard result == UInt32(NFT_FIB_RESULT_ADDRTYPE.rawValue) else { throw fail("fib result \(result)") }
                switch flags {
                case UInt32(NFTA_FIB_F_DADDR.rawValue): loads.append(.fibDestinationType)
                case UInt32(NFTA_FIB_F_SADDR.rawValue): loads.append(.fibSourceType)
                default: throw fail("fib result \(result) flags \(flags)")
                }
                loadedBytes.append(4)
            case .ct(let key, _):
                switch key {
                case UInt32(NFT_CT_STATE.rawValue): loads.append(.ctState)
                case UInt32(NFT_CT_STATUS.rawValue): loads.append(.ctStatus)
                default: throw fail("ct key \(key)")
                }
                loadedBytes.append(4)
            case .bitwise(_, _, let mask, let xor):
                guard loads.count == 1, pendingBitwise == nil else { throw fail("bitwise without a single load") }
                pendingBitwise = (mask, xor)
            case .metaSet(let key, _):
                guard key == UInt32(NFT_META_MARK.rawValue), loads == [.mark], let bitwise = pendingBitwise,
                      bitwise.mask.count == 4, bitwise.xor.count == 4 else { throw fail("meta set") }
                let mask = Self.u32(bitwise.mask), xor = Self.u32(bitwise.xor)
                if mask == ~xor {
                    statements.append(.setMarkBits(xor))
                } else if mask == 0xffff_ffff {
                    statements.append(.toggleMarkBits(xor))
                } else {
                    throw fail("meta mark set with mask \(mask) xor \(xor)")
                }
                loads = []; loadedBytes = []; pendingBitwise = nil
            case .compare(_, let op, let data):
                guard loads.count == 1 else { throw fail("cmp after \(loads.count) loads") }
                let negated: Bool
                switch op {
                case UInt32(NFT_CMP_EQ.rawValue): negated = false
                case UInt32(NFT_CMP_NEQ.rawValue): negated = true
                default: throw fail("cmp op \(op)")
                }
                statements.append(try comparison(loads[0], loadedBytes[0], negated: negated, data: data,
                                                 bitwise: pendingBitwise))
                loads = []; loadedBytes = []; pendingBitwise = nil
            case .lookup(_, let destination, let set, let flags):
                guard flags == 0, !loads.isEmpty, pendingBitwise == nil,
                      zip(loads, loadedBytes).allSatisfy({ $0.dataType.size == $1 }) else {
                    throw fail("lookup of \(set)")
                }
                switch destination {
                case nil:
                    statements.append(.lookup(loads, set: set))
                case UInt32(NFT_REG_VERDICT.rawValue):
                    statements.append(.verdictMap(loads, map: set))
                default:
                    // A map yielding address . port feeds the nat expression that follows.
                    guard index < expressions.count,
                          case .nat(let type, let natFamily, _, _, _) = expressions[index],
                          type == UInt32(NFT_NAT_DNAT.rawValue), natFamily == UInt32(family.protocolFamily) else {
                        throw fail("data lookup of \(set) not followed by dnat")
                    }
                    index += 1
                    statements.append(.dnatMap(loads, map: set, family: family))
                }
                loads = []; loadedBytes = []
            case .immediate(let code, let chain):
                statements.append(.verdict(try verdict(code, chain)))
            case .masquerade(let flags):
                statements.append(.masquerade(fullyRandom: flags & UInt32(NF_NAT_RANGE_PROTO_RANDOM_FULLY) != 0))
            case .reject(let type, _):
                switch type {
                case UInt32(NFT_REJECT_TCP_RST.rawValue): statements.append(.reject(.tcpReset))
                case UInt32(NFT_REJECT_ICMP_UNREACH.rawValue): statements.append(.reject(.portUnreachable))
                default: throw fail("reject type \(type)")
                }
            case .counter:
                statements.append(.counter)
            case .nat:
                throw fail("nat without a map lookup")
            case .other(let name):
                throw fail("expression \(name)")
            }
        }
        guard loads.isEmpty, pendingBitwise == nil else { throw fail("loads left unused") }
        return Rule(statements)
    }

    private func payloadSelector(base: UInt32, offset: UInt32, length: UInt32) -> (Selector, Bool)? {
        if base == UInt32(NFT_PAYLOAD_TRANSPORT_HEADER.rawValue), offset == 2, length == 2 {
            return (.transportDestinationPort, true)
        }
        guard base == UInt32(NFT_PAYLOAD_NETWORK_HEADER.rawValue) else { return nil }
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

    private func verdict(_ code: Int32, _ chain: String?) throws(Unrecognized) -> Verdict {
        switch (code, chain) {
        case (Verdict.accept.code, nil): return .accept
        case (Verdict.drop.code, nil): return .drop
        case (Verdict.return.code, nil): return .return
        case (Verdict.jump("").code, let chain?): return .jump(chain)
        case (Verdict.goto("").code, let chain?): return .goto(chain)
        default: throw Unrecognized(reason: "verdict \(code)")
        }
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
        guard bytes.count == type.size else { return nil }
        switch type {
        case .ipv4Address, .ipv6Address:
            return IPAddress(bytes: bytes).map(Value.address)
        case .inetProto:
            return .proto(bytes[0])
        case .inetService:
            return .port(UInt16(bytes[0]) << 8 | UInt16(bytes[1]))
        case .mark, .integer32, .ctState, .ctStatus, .fibAddressType:
            return .integer(RuleDecoder.u32(bytes))
        }
    }
}
