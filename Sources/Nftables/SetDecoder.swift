import Netlink

/// Turns dumped set declarations and elements back into the IR: the inverse of
/// `MessageEncoder`'s set and element encoding.
struct SetDecoder {
    let family: TableFamily

    /// Rebuilds the IR declaration; it must encode back to exactly what the kernel holds.
    ///
    /// - Throws: ``RuleDecoder/Unrecognized`` naming what differs from a declaration nftproxy writes.
    func declaration(of wire: NftSet) throws(RuleDecoder.Unrecognized) -> NamedSet {
        func fail(_ reason: String) -> RuleDecoder.Unrecognized { RuleDecoder.Unrecognized(reason: reason) }
        let flags = wire.flags ?? 0
        let isMap = flags & NftSetFlag.map != 0
        let known = NftSetFlag.map | NftSetFlag.timeout | NftSetFlag.dynamic | NftSetFlag.interval | NftSetFlag.concatenation
        guard flags & ~known == 0 else {
            throw fail("set flags 0x\(String(flags & ~known, radix: 16)) (constant, interval, object, …) are not ones nftproxy writes")
        }
        var setFlags: SetFlags = []
        if flags & NftSetFlag.timeout != 0 { setFlags.insert(.timeout) }
        if flags & NftSetFlag.dynamic != 0 { setFlags.insert(.dynamic) }
        if flags & NftSetFlag.interval != 0 { setFlags.insert(.interval) }
        let counter: Bool
        if wire.expressions.isEmpty {
            counter = false
        } else if wire.expressions.count == 1, case .counter = wire.expressions[0] {
            counter = true
        } else {
            throw fail("set expressions \(wire.expressions) other than one counter")
        }
        guard let keyTypeID = wire.keyType, let keyTypes = SetUserData.dataTypes(ofTypeID: keyTypeID) else {
            throw fail("key type \(wire.keyType.map { String($0) } ?? "missing")")
        }
        let userData = wire.userData ?? []
        let typeOf = SetUserData.decodeTypeOf(userData, family: family)
        let key: SetFields = typeOf.key.map { .typeOf($0) } ?? .types(keyTypes)
        var data: SetData?
        if isMap {
            if wire.dataType == nftVerdictDataType {
                data = .verdict
            } else if let selectors = typeOf.data {
                data = .fields(.typeOf(selectors))
            } else if let dataTypes = wire.dataType.flatMap(SetUserData.dataTypes(ofTypeID:)) {
                data = .fields(.types(dataTypes))
            } else {
                throw fail("data type \(wire.dataType.map { String($0) } ?? "missing")")
            }
        }
        let candidate = NamedSet(name: wire.name, key: key, data: data, size: wire.size.map(Int.init), flags: setFlags,
                                 timeout: wire.timeout, counter: counter)
        // Only a declaration that encodes to the same kernel attributes is the one we read.
        guard concatenatedTypeID(key.dataTypes) == keyTypeID, SetLayout.length(of: key) == Int(wire.keyLength ?? 0) else {
            throw fail("key length \(wire.keyLength ?? 0) does not match its type")
        }
        guard SetUserData.encode(candidate) == userData else { throw fail("userdata differs from nft's for this declaration") }
        // nftproxy writes interval sets only with concatenated keys (ranges with a key end);
        // a plain one holds start and end elements the reader does not pair.
        if setFlags.contains(.interval), key.dataTypes.count < 2 {
            throw fail("set flags interval on a single field (nftproxy writes only concatenated ranges)")
        }
        guard MessageEncoder.wireFlags(of: candidate) == flags else { throw fail("flags 0x\(String(flags, radix: 16))") }
        return candidate
    }

    /// The IR of a dumped element of `declaration`, or nil when it does not fit it.
    ///
    /// A timeout equal to the set's is the set's (the kernel reports it on every element);
    /// expiry and counters land in ``SetElement/observed``.
    func element(_ wire: NftSetElement, of declaration: NamedSet) -> SetElement? {
        guard let key = SetLayout.values(wire.key, declaration.key.dataTypes) else { return nil }
        var element = SetElement(key: key)
        if declaration.flags.contains(.interval) {
            guard let bytes = wire.keyEnd, let keyEnd = SetLayout.values(bytes, declaration.key.dataTypes) else { return nil }
            element.keyEnd = keyEnd
        }
        switch declaration.data {
        case nil:
            break
        case .verdict:
            guard let code = wire.verdict, let verdict = Verdict(code: code, chain: wire.chain),
                  verdict != .return else { return nil }
            element.data = .verdict(verdict)
        case .fields(let fields):
            guard let bytes = wire.data, let values = SetLayout.values(bytes, fields.dataTypes) else { return nil }
            element.data = .values(values)
        }
        guard wire.timeout == nil || declaration.flags.contains(.timeout) else { return nil }
        element.timeout = wire.timeout == declaration.timeout ? nil : wire.timeout
        if let userData = wire.userData {
            guard let comment = ElementComment.text(userData) else { return nil }
            element.comment = comment
        }
        var observed = ObservedElement(expiresIn: wire.expiration)
        for expression in wire.expressions {
            guard case let .counter(packets, bytes) = expression, declaration.counter else { return nil }
            observed.packets = packets
            observed.bytes = bytes
        }
        if observed != ObservedElement() { element.observed = observed }
        return element
    }
}
