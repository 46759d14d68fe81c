import CNetfilter

/// One nf_tables expression of a rule (or of a set element), as the kernel holds it:
/// the vocabulary between the Nftables encoder and decoder and libnftnl.
///
/// Optional fields and zero flags are left out of the message (nft 1.0.6 does the
/// same), so an expression written and read back compares equal.
public indirect enum NftExpression: Hashable, Sendable {
    /// Loads `length` bytes at `offset` of a header into `destination`.
    case payload(base: NftPayloadBase, offset: UInt32, length: UInt32, destination: NftRegister)
    /// Loads packet metadata into `destination`.
    case metaLoad(key: NftMetaKey, destination: NftRegister)
    /// Writes packet metadata from `source`.
    case metaSet(key: NftMetaKey, source: NftRegister)
    /// A number generator: `type` (`random`) modulo `modulus`, plus `offset`.
    case numgen(type: NftNumgenType, modulus: UInt32, offset: UInt32, destination: NftRegister)
    /// A routing lookup.
    case fib(result: NftFibResult, flags: NftFibFlags, destination: NftRegister)
    /// Loads a conntrack field into `destination`; of the tuple of `direction` (0 original,
    /// 1 reply) for the keys that have one (addresses, ports), nil for the others.
    case ctLoad(key: NftCtKey, direction: UInt8?, destination: NftRegister)
    /// Compares `source` with `data`; a mismatch ends the rule.
    case compare(source: NftRegister, op: NftCompareOperator, data: [UInt8])
    /// `destination = (source & mask) ^ xor` over `length` bytes.
    case bitwise(source: NftRegister, destination: NftRegister, length: UInt32, mask: [UInt8], xor: [UInt8])
    /// Looks `source` (and the registers after it) up in `set`; a map's data lands in
    /// `destination`. `setID` names a set created in the same transaction.
    case lookup(source: NftRegister, destination: NftRegister?, set: String, setID: UInt32?, flags: UInt32)
    /// A verdict (`immediate` into the verdict register): code and, for jump/goto, chain.
    case verdict(code: Int32, chain: String?)
    /// NAT to the address (and port) in the given registers.
    case nat(type: NftNatType, family: UInt32, addressRegister: NftRegister?, protoRegister: NftRegister?, flags: UInt32)
    /// `masquerade`.
    case masquerade(flags: UInt32)
    /// `reject`.
    case reject(type: NftRejectType, code: UInt8)
    /// `counter`: what it counted (zero when written).
    case counter(packets: UInt64, bytes: UInt64)
    /// Adds, updates or deletes the element keyed by `keyRegister` (and the registers after
    /// it) in `set`, with the data in `dataRegister` (maps), `timeout` milliseconds when
    /// given, and the element expressions.
    case dynset(operation: NftDynsetOperation, set: String, setID: UInt32?, keyRegister: NftRegister,
                dataRegister: NftRegister?, timeout: UInt64?, expressions: [NftExpression])
    /// An expression nftproxy does not model, by kind (`"quota"`, `"immediate data"`, `"ct set"`).
    case unknown(String)
}

extension NftExpression {
    /// A libnftnl expression for this one.
    ///
    /// - Throws: ``NetlinkError/allocationFailed(object:)``, and
    ///   ``NetlinkError/malformed(_:)`` for ``unknown(_:)``, which cannot be written.
    func makeNftnl() throws(NetlinkError) -> NftnlExpression {
        switch self {
        case let .payload(base, offset, length, destination):
            let e = try NftnlExpression("payload")
            e.set(NFTNL_EXPR_PAYLOAD_DREG, u32: destination.rawValue)
            e.set(NFTNL_EXPR_PAYLOAD_BASE, u32: base.rawValue)
            e.set(NFTNL_EXPR_PAYLOAD_OFFSET, u32: offset)
            e.set(NFTNL_EXPR_PAYLOAD_LEN, u32: length)
            return e
        case let .metaLoad(key, destination):
            let e = try NftnlExpression("meta")
            e.set(NFTNL_EXPR_META_KEY, u32: key.rawValue)
            e.set(NFTNL_EXPR_META_DREG, u32: destination.rawValue)
            return e
        case let .metaSet(key, source):
            let e = try NftnlExpression("meta")
            e.set(NFTNL_EXPR_META_KEY, u32: key.rawValue)
            e.set(NFTNL_EXPR_META_SREG, u32: source.rawValue)
            return e
        case let .numgen(type, modulus, offset, destination):
            let e = try NftnlExpression("numgen")
            e.set(NFTNL_EXPR_NG_DREG, u32: destination.rawValue)
            e.set(NFTNL_EXPR_NG_MODULUS, u32: modulus)
            e.set(NFTNL_EXPR_NG_TYPE, u32: type.rawValue)
            e.set(NFTNL_EXPR_NG_OFFSET, u32: offset)
            return e
        case let .fib(result, flags, destination):
            let e = try NftnlExpression("fib")
            e.set(NFTNL_EXPR_FIB_DREG, u32: destination.rawValue)
            e.set(NFTNL_EXPR_FIB_RESULT, u32: result.rawValue)
            e.set(NFTNL_EXPR_FIB_FLAGS, u32: flags.rawValue)
            return e
        case let .ctLoad(key, direction, destination):
            let e = try NftnlExpression("ct")
            e.set(NFTNL_EXPR_CT_KEY, u32: key.rawValue)
            if let direction { e.set(NFTNL_EXPR_CT_DIR, u8: direction) }
            e.set(NFTNL_EXPR_CT_DREG, u32: destination.rawValue)
            return e
        case let .compare(source, op, data):
            let e = try NftnlExpression("cmp")
            e.set(NFTNL_EXPR_CMP_SREG, u32: source.rawValue)
            e.set(NFTNL_EXPR_CMP_OP, u32: op.rawValue)
            e.set(NFTNL_EXPR_CMP_DATA, bytes: data)
            return e
        case let .bitwise(source, destination, length, mask, xor):
            let e = try NftnlExpression("bitwise")
            e.set(NFTNL_EXPR_BITWISE_SREG, u32: source.rawValue)
            e.set(NFTNL_EXPR_BITWISE_DREG, u32: destination.rawValue)
            e.set(NFTNL_EXPR_BITWISE_LEN, u32: length)
            e.set(NFTNL_EXPR_BITWISE_MASK, bytes: mask)
            e.set(NFTNL_EXPR_BITWISE_XOR, bytes: xor)
            return e
        case let .lookup(source, destination, set, setID, flags):
            let e = try NftnlExpression("lookup")
            e.set(NFTNL_EXPR_LOOKUP_SREG, u32: source.rawValue)
            if let destination { e.set(NFTNL_EXPR_LOOKUP_DREG, u32: destination.rawValue) }
            e.set(NFTNL_EXPR_LOOKUP_SET, string: set)
            if let setID { e.set(NFTNL_EXPR_LOOKUP_SET_ID, u32: setID) }
            if flags != 0 { e.set(NFTNL_EXPR_LOOKUP_FLAGS, u32: flags) }
            return e
        case let .verdict(code, chain):
            let e = try NftnlExpression("immediate")
            e.set(NFTNL_EXPR_IMM_DREG, u32: NftRegister.verdict.rawValue)
            e.set(NFTNL_EXPR_IMM_VERDICT, u32: UInt32(bitPattern: code))
            if let chain { e.set(NFTNL_EXPR_IMM_CHAIN, string: chain) }
            return e
        case let .nat(type, family, addressRegister, protoRegister, flags):
            let e = try NftnlExpression("nat")
            e.set(NFTNL_EXPR_NAT_TYPE, u32: type.rawValue)
            e.set(NFTNL_EXPR_NAT_FAMILY, u32: family)
            if let addressRegister { e.set(NFTNL_EXPR_NAT_REG_ADDR_MIN, u32: addressRegister.rawValue) }
            if let protoRegister { e.set(NFTNL_EXPR_NAT_REG_PROTO_MIN, u32: protoRegister.rawValue) }
            if flags != 0 { e.set(NFTNL_EXPR_NAT_FLAGS, u32: flags) }
            return e
        case let .masquerade(flags):
            let e = try NftnlExpression("masq")
            if flags != 0 { e.set(NFTNL_EXPR_MASQ_FLAGS, u32: flags) }
            return e
        case let .reject(type, code):
            let e = try NftnlExpression("reject")
            e.set(NFTNL_EXPR_REJECT_TYPE, u32: type.rawValue)
            e.set(NFTNL_EXPR_REJECT_CODE, u8: code)
            return e
        case let .counter(packets, bytes):
            let e = try NftnlExpression("counter")
            if packets != 0 { e.set(NFTNL_EXPR_CTR_PACKETS, u64: packets) }
            if bytes != 0 { e.set(NFTNL_EXPR_CTR_BYTES, u64: bytes) }
            return e
        case let .dynset(operation, set, setID, keyRegister, dataRegister, timeout, expressions):
            let e = try NftnlExpression("dynset")
            e.set(NFTNL_EXPR_DYNSET_SREG_KEY, u32: keyRegister.rawValue)
            if let dataRegister { e.set(NFTNL_EXPR_DYNSET_SREG_DATA, u32: dataRegister.rawValue) }
            e.set(NFTNL_EXPR_DYNSET_OP, u32: operation.rawValue)
            e.set(NFTNL_EXPR_DYNSET_SET_NAME, string: set)
            if let setID { e.set(NFTNL_EXPR_DYNSET_SET_ID, u32: setID) }
            if let timeout { e.set(NFTNL_EXPR_DYNSET_TIMEOUT, u64: timeout) }
            for expression in expressions {
                nftnl_expr_add_expr(e.object, UInt32(NFTNL_EXPR_DYNSET_EXPRESSIONS), try expression.makeNftnl().release())
            }
            return e
        case let .unknown(kind):
            throw .malformed("cannot write an expression nftproxy does not model (\(kind))")
        }
    }

    /// Reads a libnftnl expression that a parsed rule, set or element owns.
    init(reading object: OpaquePointer) {
        let e = NftnlExpressionReader(object: object)
        let kind = e.string(NFTNL_EXPR_NAME) ?? ""
        func register(_ attribute: Int) -> NftRegister { NftRegister(rawValue: e.u32(attribute)) }
        func optionalRegister(_ attribute: Int) -> NftRegister? { e.optionalU32(attribute).map(NftRegister.init) }
        switch kind {
        case "payload":
            self = .payload(base: NftPayloadBase(rawValue: e.u32(NFTNL_EXPR_PAYLOAD_BASE)),
                            offset: e.u32(NFTNL_EXPR_PAYLOAD_OFFSET), length: e.u32(NFTNL_EXPR_PAYLOAD_LEN),
                            destination: register(NFTNL_EXPR_PAYLOAD_DREG))
            if e.has(NFTNL_EXPR_PAYLOAD_SREG) { self = .unknown("payload set") }
        case "meta":
            let key = NftMetaKey(rawValue: e.u32(NFTNL_EXPR_META_KEY))
            self = e.has(NFTNL_EXPR_META_SREG)
                ? .metaSet(key: key, source: register(NFTNL_EXPR_META_SREG))
                : .metaLoad(key: key, destination: register(NFTNL_EXPR_META_DREG))
        case "numgen":
            self = .numgen(type: NftNumgenType(rawValue: e.u32(NFTNL_EXPR_NG_TYPE)), modulus: e.u32(NFTNL_EXPR_NG_MODULUS),
                           offset: e.u32(NFTNL_EXPR_NG_OFFSET), destination: register(NFTNL_EXPR_NG_DREG))
        case "fib":
            self = .fib(result: NftFibResult(rawValue: e.u32(NFTNL_EXPR_FIB_RESULT)),
                        flags: NftFibFlags(rawValue: e.u32(NFTNL_EXPR_FIB_FLAGS)), destination: register(NFTNL_EXPR_FIB_DREG))
        case "ct":
            self = e.has(NFTNL_EXPR_CT_SREG)
                ? .unknown("ct set")
                : .ctLoad(key: NftCtKey(rawValue: e.u32(NFTNL_EXPR_CT_KEY)),
                          direction: e.has(NFTNL_EXPR_CT_DIR) ? e.u8(NFTNL_EXPR_CT_DIR) : nil,
                          destination: register(NFTNL_EXPR_CT_DREG))
        case "cmp":
            self = .compare(source: register(NFTNL_EXPR_CMP_SREG), op: NftCompareOperator(rawValue: e.u32(NFTNL_EXPR_CMP_OP)),
                            data: e.bytes(NFTNL_EXPR_CMP_DATA))
        case "bitwise":
            self = .bitwise(source: register(NFTNL_EXPR_BITWISE_SREG), destination: register(NFTNL_EXPR_BITWISE_DREG),
                            length: e.u32(NFTNL_EXPR_BITWISE_LEN), mask: e.bytes(NFTNL_EXPR_BITWISE_MASK),
                            xor: e.bytes(NFTNL_EXPR_BITWISE_XOR))
        case "lookup":
            self = .lookup(source: register(NFTNL_EXPR_LOOKUP_SREG), destination: optionalRegister(NFTNL_EXPR_LOOKUP_DREG),
                           set: e.string(NFTNL_EXPR_LOOKUP_SET) ?? "", setID: e.optionalU32(NFTNL_EXPR_LOOKUP_SET_ID),
                           flags: e.u32(NFTNL_EXPR_LOOKUP_FLAGS))
        case "immediate":
            if e.has(NFTNL_EXPR_IMM_VERDICT) {
                self = .verdict(code: Int32(bitPattern: e.u32(NFTNL_EXPR_IMM_VERDICT)), chain: e.string(NFTNL_EXPR_IMM_CHAIN))
            } else {
                self = .unknown("immediate data")
            }
        case "nat":
            self = .nat(type: NftNatType(rawValue: e.u32(NFTNL_EXPR_NAT_TYPE)), family: e.u32(NFTNL_EXPR_NAT_FAMILY),
                        addressRegister: optionalRegister(NFTNL_EXPR_NAT_REG_ADDR_MIN),
                        protoRegister: optionalRegister(NFTNL_EXPR_NAT_REG_PROTO_MIN), flags: e.u32(NFTNL_EXPR_NAT_FLAGS))
            // The kernel dumps the range's upper registers (equal to the lower ones when the
            // rule gave one register each) and the range flags it derived; neither is written.
        case "masq":
            self = e.has(NFTNL_EXPR_MASQ_REG_PROTO_MIN) ? .unknown("masq to ports") : .masquerade(flags: e.u32(NFTNL_EXPR_MASQ_FLAGS))
        case "reject":
            self = .reject(type: NftRejectType(rawValue: e.u32(NFTNL_EXPR_REJECT_TYPE)), code: e.u8(NFTNL_EXPR_REJECT_CODE))
        case "counter":
            self = .counter(packets: e.u64(NFTNL_EXPR_CTR_PACKETS), bytes: e.u64(NFTNL_EXPR_CTR_BYTES))
        case "dynset":
            let nested = readExpressions { nftnl_expr_expr_foreach(object, $0, $1) }
            self = .dynset(operation: NftDynsetOperation(rawValue: e.u32(NFTNL_EXPR_DYNSET_OP)),
                           set: e.string(NFTNL_EXPR_DYNSET_SET_NAME) ?? "", setID: e.optionalU32(NFTNL_EXPR_DYNSET_SET_ID),
                           keyRegister: register(NFTNL_EXPR_DYNSET_SREG_KEY),
                           dataRegister: optionalRegister(NFTNL_EXPR_DYNSET_SREG_DATA),
                           timeout: e.optionalU64(NFTNL_EXPR_DYNSET_TIMEOUT), expressions: nested)
        default:
            self = .unknown(kind)
        }
    }
}

/// Reads the expressions a libnftnl `*_expr_foreach` function visits: `visit` calls
/// that function with the callback and context it is given.
func readExpressions(
    _ visit: (@convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Int32, UnsafeMutableRawPointer) -> Int32
) -> [NftExpression] {
    var list: [NftExpression] = []
    withUnsafeMutablePointer(to: &list) { _ = visit(appendExpression, UnsafeMutableRawPointer($0)) }
    return list
}

/// The callback of ``readExpressions(_:)``: appends the visited expression to the list in `context`.
private let appendExpression: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Int32 = { expression, context in
    guard let expression, let context else { return 0 }
    context.assumingMemoryBound(to: [NftExpression].self).pointee.append(NftExpression(reading: expression))
    return 0
}
