import CNetfilter

// Writing nf_tables objects into messages and reading them out of dumps, through
// libnftnl's owned wrappers.

extension NetlinkMessageWriter {
    /// Writes `table` as the payload of a table message.
    public func putTable(_ table: NftTable) throws(NetlinkError) {
        let object = try NftnlTable()
        defer { withExtendedLifetime(object) {} }
        nftnl_table_set_str(object.object, UInt16(NFTNL_TABLE_NAME.rawValue), table.name)
        if let flags = table.flags { nftnl_table_set_u32(object.object, UInt16(NFTNL_TABLE_FLAGS.rawValue), flags) }
        nftnl_table_nlmsg_build_payload(header, object.object)
    }

    /// Writes `chain` as the payload of a chain message.
    public func putChain(_ chain: NftChain) throws(NetlinkError) {
        let object = try NftnlChain()
        defer { withExtendedLifetime(object) {} }
        let c = object.object
        nftnl_chain_set_str(c, UInt16(NFTNL_CHAIN_TABLE.rawValue), chain.table)
        nftnl_chain_set_str(c, UInt16(NFTNL_CHAIN_NAME.rawValue), chain.name)
        if let hook = chain.hook { nftnl_chain_set_u32(c, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue), hook) }
        if let priority = chain.priority { nftnl_chain_set_s32(c, UInt16(NFTNL_CHAIN_PRIO.rawValue), priority) }
        if let type = chain.type { nftnl_chain_set_str(c, UInt16(NFTNL_CHAIN_TYPE.rawValue), type) }
        if let policy = chain.policy { nftnl_chain_set_u32(c, UInt16(NFTNL_CHAIN_POLICY.rawValue), policy) }
        nftnl_chain_nlmsg_build_payload(header, c)
    }

    /// Writes `rule` as the payload of a rule message.
    ///
    /// - Throws: ``NetlinkError/allocationFailed(object:)``, or ``NetlinkError/malformed(_:)``
    ///   for an ``NftExpression/unknown(_:)`` expression.
    public func putRule(_ rule: NftRule) throws(NetlinkError) {
        let object = try NftnlRule()
        defer { withExtendedLifetime(object) {} }
        let r = object.object
        if let family = rule.family { nftnl_rule_set_u32(r, UInt16(NFTNL_RULE_FAMILY.rawValue), UInt32(family)) }
        nftnl_rule_set_str(r, UInt16(NFTNL_RULE_TABLE.rawValue), rule.table)
        nftnl_rule_set_str(r, UInt16(NFTNL_RULE_CHAIN.rawValue), rule.chain)
        if let userData = rule.userData {
            userData.withUnsafeBytes {
                _ = nftnl_rule_set_data(r, UInt16(NFTNL_RULE_USERDATA.rawValue), $0.baseAddress, UInt32($0.count))
            }
        }
        for expression in rule.expressions { object.add(try expression.makeNftnl()) }
        nftnl_rule_nlmsg_build_payload(header, r)
    }

    /// Writes `set`'s declaration as the payload of a set message.
    public func putSet(_ set: NftSet) throws(NetlinkError) {
        let object = try set.makeNftnl(withElements: false)
        defer { withExtendedLifetime(object) {} }
        nftnl_set_nlmsg_build_payload(header, object.object)
    }

    /// Writes `set`'s name, id and ``NftSet/elements`` as the payload of an element message.
    public func putElements(_ set: NftSet) throws(NetlinkError) {
        let object = try set.makeNftnl(withElements: true)
        defer { withExtendedLifetime(object) {} }
        nftnl_set_elems_nlmsg_build_payload(header, object.object)
    }
}

extension NftSet {
    /// A libnftnl set with the fields that are not nil (and the elements, if asked).
    func makeNftnl(withElements: Bool) throws(NetlinkError) -> NftnlSet {
        let object = try NftnlSet()
        defer { withExtendedLifetime(object) {} }
        let s = object.object
        func u32(_ attribute: nftnl_set_attr, _ value: UInt32?) {
            if let value { nftnl_set_set_u32(s, UInt16(attribute.rawValue), value) }
        }
        u32(NFTNL_SET_FAMILY, family.map(UInt32.init))
        nftnl_set_set_str(s, UInt16(NFTNL_SET_TABLE.rawValue), table)
        nftnl_set_set_str(s, UInt16(NFTNL_SET_NAME.rawValue), name)
        u32(NFTNL_SET_FLAGS, flags)
        u32(NFTNL_SET_KEY_TYPE, keyType)
        u32(NFTNL_SET_KEY_LEN, keyLength)
        u32(NFTNL_SET_DATA_TYPE, dataType)
        u32(NFTNL_SET_DATA_LEN, dataLength)
        u32(NFTNL_SET_DESC_SIZE, size)
        u32(NFTNL_SET_ID, id)
        if let timeout { nftnl_set_set_u64(s, UInt16(NFTNL_SET_TIMEOUT.rawValue), timeout) }
        u32(NFTNL_SET_GC_INTERVAL, gcInterval)
        if let userData {
            userData.withUnsafeBytes {
                _ = nftnl_set_set_data(s, UInt16(NFTNL_SET_USERDATA.rawValue), $0.baseAddress, UInt32($0.count))
            }
        }
        if let fieldLengths {
            fieldLengths.withUnsafeBytes {
                _ = nftnl_set_set_data(s, UInt16(NFTNL_SET_DESC_CONCAT.rawValue), $0.baseAddress, UInt32($0.count))
            }
        }
        for expression in expressions { object.add(try expression.makeNftnl()) }
        if withElements {
            for element in elements { try element.add(to: object) }
        }
        return object
    }

    /// Reads a parsed libnftnl set (a set dump, or an element dump when `elements`).
    init(reading s: OpaquePointer, elements readElements: Bool) {
        func has(_ attribute: nftnl_set_attr) -> Bool { nftnl_set_is_set(s, UInt16(attribute.rawValue)) }
        func u32(_ attribute: nftnl_set_attr) -> UInt32? {
            has(attribute) ? nftnl_set_get_u32(s, UInt16(attribute.rawValue)) : nil
        }
        func string(_ attribute: nftnl_set_attr) -> String? {
            guard has(attribute), let pointer = nftnl_set_get_str(s, UInt16(attribute.rawValue)) else { return nil }
            return String(cString: pointer)
        }
        var userData: [UInt8]?
        var length: UInt32 = 0
        if has(NFTNL_SET_USERDATA), let pointer = nftnl_set_get_data(s, UInt16(NFTNL_SET_USERDATA.rawValue), &length) {
            userData = Array(UnsafeRawBufferPointer(start: pointer, count: Int(length)))
        }
        var elements: [NftSetElement] = []
        if readElements, let iterator = nftnl_set_elems_iter_create(s) {
            defer { nftnl_set_elems_iter_destroy(iterator) }
            while let element = nftnl_set_elems_iter_next(iterator) {
                elements.append(NftSetElement(reading: element))
            }
        }
        self.init(
            family: u32(NFTNL_SET_FAMILY).map { UInt8(truncatingIfNeeded: $0) },
            table: string(NFTNL_SET_TABLE) ?? "", name: string(NFTNL_SET_NAME) ?? "",
            flags: u32(NFTNL_SET_FLAGS), keyType: u32(NFTNL_SET_KEY_TYPE), keyLength: u32(NFTNL_SET_KEY_LEN),
            dataType: u32(NFTNL_SET_DATA_TYPE), dataLength: u32(NFTNL_SET_DATA_LEN), size: u32(NFTNL_SET_DESC_SIZE),
            id: u32(NFTNL_SET_ID),
            timeout: has(NFTNL_SET_TIMEOUT) ? nftnl_set_get_u64(s, UInt16(NFTNL_SET_TIMEOUT.rawValue)) : nil,
            gcInterval: u32(NFTNL_SET_GC_INTERVAL), userData: userData,
            expressions: readExpressions { nftnl_set_expr_foreach(s, $0, $1) },
            elements: elements)
        if has(NFTNL_SET_DESC_CONCAT), let pointer = nftnl_set_get_data(s, UInt16(NFTNL_SET_DESC_CONCAT.rawValue), &length) {
            // libnftnl hands back its whole field array; the used fields are the non-zero ones.
            fieldLengths = Array(UnsafeRawBufferPointer(start: pointer, count: Int(length))).prefix { $0 != 0 }
        }
    }
}

extension NftSetElement {
    /// Allocates a libnftnl element, hands it to `set` at once (the set frees it from then
    /// on, also when filling it fails) and fills it. No wrapper per element: sets hold
    /// hundreds of thousands.
    func add(to set: NftnlSet) throws(NetlinkError) {
        guard let e = nftnl_set_elem_alloc() else { throw .allocationFailed(object: "nftnl_set_elem") }
        nftnl_set_elem_add(set.object, e)
        func data(_ attribute: Int, _ bytes: [UInt8]) {
            bytes.withUnsafeBytes { _ = nftnl_set_elem_set(e, UInt16(attribute), $0.baseAddress, UInt32($0.count)) }
        }
        data(NFTNL_SET_ELEM_KEY, key)
        if let verdict { nftnl_set_elem_set_u32(e, UInt16(NFTNL_SET_ELEM_VERDICT), UInt32(bitPattern: verdict)) }
        if let chain { nftnl_set_elem_set_str(e, UInt16(NFTNL_SET_ELEM_CHAIN), chain) }
        if let value = self.data { data(NFTNL_SET_ELEM_DATA, value) }
        if let keyEnd { data(NFTNL_SET_ELEM_KEY_END, keyEnd) }
        if let userData { data(NFTNL_SET_ELEM_USERDATA, userData) }
        if let timeout { nftnl_set_elem_set_u64(e, UInt16(NFTNL_SET_ELEM_TIMEOUT), timeout) }
        if let expiration { nftnl_set_elem_set_u64(e, UInt16(NFTNL_SET_ELEM_EXPIRATION), expiration) }
        for expression in expressions { nftnl_set_elem_add_expr(e, try expression.makeNftnl().release()) }
    }

    /// Reads an element a parsed libnftnl set owns.
    init(reading e: OpaquePointer) {
        func has(_ attribute: Int) -> Bool { nftnl_set_elem_is_set(e, UInt16(attribute)) }
        func bytes(_ attribute: Int) -> [UInt8]? {
            var length: UInt32 = 0
            guard has(attribute), let pointer = nftnl_set_elem_get(e, UInt16(attribute), &length) else { return nil }
            return Array(UnsafeRawBufferPointer(start: pointer, count: Int(length)))
        }
        func u64(_ attribute: Int) -> UInt64? { has(attribute) ? nftnl_set_elem_get_u64(e, UInt16(attribute)) : nil }
        var chain: String?
        if has(NFTNL_SET_ELEM_CHAIN), let pointer = nftnl_set_elem_get_str(e, UInt16(NFTNL_SET_ELEM_CHAIN)) {
            chain = String(cString: pointer)
        }
        self.init(
            key: bytes(NFTNL_SET_ELEM_KEY) ?? [],
            verdict: has(NFTNL_SET_ELEM_VERDICT) ? Int32(bitPattern: nftnl_set_elem_get_u32(e, UInt16(NFTNL_SET_ELEM_VERDICT))) : nil,
            chain: chain, data: bytes(NFTNL_SET_ELEM_DATA),
            timeout: u64(NFTNL_SET_ELEM_TIMEOUT), expiration: u64(NFTNL_SET_ELEM_EXPIRATION),
            expressions: readExpressions { nftnl_set_elem_expr_foreach(e, $0, $1) })
        keyEnd = bytes(NFTNL_SET_ELEM_KEY_END)
        userData = bytes(NFTNL_SET_ELEM_USERDATA)
    }
}

// MARK: - Parsing messages

extension NftTable {
    /// Reads a dumped table message.
    public init(parsing message: NetlinkMessageView) throws(NetlinkError) {
        let object = try NftnlTable()
        defer { withExtendedLifetime(object) {} }
        guard nftnl_table_nlmsg_parse(message.header, object.object) >= 0,
              let name = nftnl_table_get_str(object.object, UInt16(NFTNL_TABLE_NAME.rawValue)) else {
            throw .malformed("table message libnftnl cannot parse")
        }
        let t = object.object
        self.init(
            name: String(cString: name),
            flags: nftnl_table_is_set(t, UInt16(NFTNL_TABLE_FLAGS.rawValue)) ? nftnl_table_get_u32(t, UInt16(NFTNL_TABLE_FLAGS.rawValue)) : nil,
            family: UInt8(truncatingIfNeeded: nftnl_table_get_u32(t, UInt16(NFTNL_TABLE_FAMILY.rawValue))))
    }
}

extension NftChain {
    /// Reads a dumped chain message.
    public init(parsing message: NetlinkMessageView) throws(NetlinkError) {
        let object = try NftnlChain()
        defer { withExtendedLifetime(object) {} }
        let c = object.object
        func has(_ attribute: nftnl_chain_attr) -> Bool { nftnl_chain_is_set(c, UInt16(attribute.rawValue)) }
        func string(_ attribute: nftnl_chain_attr) -> String? {
            guard has(attribute), let pointer = nftnl_chain_get_str(c, UInt16(attribute.rawValue)) else { return nil }
            return String(cString: pointer)
        }
        func u32(_ attribute: nftnl_chain_attr) -> UInt32? {
            has(attribute) ? nftnl_chain_get_u32(c, UInt16(attribute.rawValue)) : nil
        }
        guard nftnl_chain_nlmsg_parse(message.header, c) >= 0, let table = string(NFTNL_CHAIN_TABLE),
              let name = string(NFTNL_CHAIN_NAME) else {
            throw .malformed("chain message libnftnl cannot parse")
        }
        self.init(table: table, name: name, hook: u32(NFTNL_CHAIN_HOOKNUM),
                  priority: has(NFTNL_CHAIN_PRIO) ? nftnl_chain_get_s32(c, UInt16(NFTNL_CHAIN_PRIO.rawValue)) : nil,
                  type: string(NFTNL_CHAIN_TYPE), policy: u32(NFTNL_CHAIN_POLICY))
    }
}

extension NftRule {
    /// Reads a dumped rule message (or a rule message built by ``NetlinkMessageWriter/putRule(_:)``).
    public init(parsing message: NetlinkMessageView) throws(NetlinkError) {
        let object = try NftnlRule()
        defer { withExtendedLifetime(object) {} }
        let r = object.object
        func has(_ attribute: nftnl_rule_attr) -> Bool { nftnl_rule_is_set(r, UInt16(attribute.rawValue)) }
        func string(_ attribute: nftnl_rule_attr) -> String? {
            guard has(attribute), let pointer = nftnl_rule_get_str(r, UInt16(attribute.rawValue)) else { return nil }
            return String(cString: pointer)
        }
        guard nftnl_rule_nlmsg_parse(message.header, r) >= 0, let table = string(NFTNL_RULE_TABLE),
              let chain = string(NFTNL_RULE_CHAIN) else {
            throw .malformed("rule message libnftnl cannot parse")
        }
        var userData: [UInt8]?
        var length: UInt32 = 0
        if has(NFTNL_RULE_USERDATA), let pointer = nftnl_rule_get_data(r, UInt16(NFTNL_RULE_USERDATA.rawValue), &length) {
            userData = Array(UnsafeRawBufferPointer(start: pointer, count: Int(length)))
        }
        self.init(family: has(NFTNL_RULE_FAMILY) ? UInt8(truncatingIfNeeded: nftnl_rule_get_u32(r, UInt16(NFTNL_RULE_FAMILY.rawValue))) : nil,
                  table: table, chain: chain,
                  expressions: readExpressions { nftnl_expr_foreach(r, $0, $1) },
                  userData: userData)
    }
}

extension NftSet {
    /// Reads a dumped set message (`NFT_MSG_NEWSET` form).
    public init(parsing message: NetlinkMessageView) throws(NetlinkError) {
        let object = try NftnlSet()
        defer { withExtendedLifetime(object) {} }
        guard nftnl_set_nlmsg_parse(message.header, object.object) >= 0 else {
            throw .malformed("set message libnftnl cannot parse")
        }
        self.init(reading: object.object, elements: false)
    }

    /// Calls `body` with each element of a dumped element message, without collecting them.
    static func forEachElement(parsing message: NetlinkMessageView, _ body: (NftSetElement) throws -> Void) throws {
        if let elements = NftSetElement.dumpReply(message) {
            for element in elements { try body(element) }
            return
        }
        let object = try NftnlSet()
        defer { withExtendedLifetime(object) {} }
        guard nftnl_set_elems_nlmsg_parse(message.header, object.object) >= 0 else {
            throw NetlinkError.malformed("set element message libnftnl cannot parse")
        }
        guard let iterator = nftnl_set_elems_iter_create(object.object) else {
            throw NetlinkError.allocationFailed(object: "nftnl_set_elems_iter")
        }
        defer { nftnl_set_elems_iter_destroy(iterator) }
        while let element = nftnl_set_elems_iter_next(iterator) {
            try body(NftSetElement(reading: element))
        }
    }

    /// Reads a dumped element message (`NFT_MSG_NEWSETELEM` form): the set's name and its elements.
    public init(parsingElements message: NetlinkMessageView) throws(NetlinkError) {
        let object = try NftnlSet()
        defer { withExtendedLifetime(object) {} }
        guard nftnl_set_elems_nlmsg_parse(message.header, object.object) >= 0 else {
            throw .malformed("set element message libnftnl cannot parse")
        }
        self.init(reading: object.object, elements: true)
    }
}
