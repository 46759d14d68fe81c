import CNetfilter
import Netlink

/// What the kernel holds in one table, read back into the IR.
public struct TableReadBack: Sendable {
    /// The table as the kernel holds it (sets with their elements, chains with their rules).
    public var table: Table
    /// Chains holding a rule nftproxy did not write (or cannot read): to be rewritten.
    public var untrustedChains: Set<String>
    /// Sets whose declaration nftproxy cannot read: the table must be replaced.
    public var unreadableSets: Set<String>
}

/// Reads tables back from the kernel over netlink (no `nft` involved).
public struct KernelReader {
    let socket: NetlinkSocket

    public init(socket: NetlinkSocket) { self.socket = socket }

    /// Reads one table; nil when the kernel has no such table.
    public func read(_ family: TableFamily, _ name: String) throws(NetlinkError) -> TableReadBack? {
        guard try tableExists(family, name) else { return nil }
        var untrusted = Set<String>()
        var unreadable = Set<String>()
        var sets: [NamedSet] = []
        for declaration in try readSets(family, name) {
            guard let set = declaration.set else {
                unreadable.insert(declaration.name)
                continue
            }
            sets.append(NamedSet(name: set.name, key: set.key, data: set.data, size: set.size,
                                 elements: try readElements(family, name, set), interval: set.interval))
        }
        var chains = try readChains(family, name)
        let rules = try readRules(family, name)
        for index in chains.indices {
            let chainRules = rules[chains[index].name] ?? []
            chains[index].rules = chainRules.compactMap { $0 }
            if chainRules.contains(where: { $0 == nil }) { untrusted.insert(chains[index].name) }
        }
        return TableReadBack(table: Table(family: family, name: name, sets: sets, chains: chains),
                             untrustedChains: untrusted, unreadableSets: unreadable)
    }

    // MARK: - Tables

    private func tableExists(_ family: TableFamily, _ name: String) throws(NetlinkError) -> Bool {
        var found = false
        try socket.dump(type: UInt16(NFT_MSG_GETTABLE.rawValue), family: family.protocolFamily) { message in
            let table = nftnl_table_alloc()!
            defer { nftnl_table_free(table) }
            guard nftnl_table_nlmsg_parse(message, table) >= 0,
                  let tableName = nftnl_table_get_str(table, UInt16(NFTNL_TABLE_NAME.rawValue)) else { return }
            if String(cString: tableName) == name { found = true }
        }
        return found
    }

    // MARK: - Chains

    private func readChains(_ family: TableFamily, _ table: String) throws(NetlinkError) -> [Chain] {
        var chains: [Chain] = []
        try socket.dump(type: UInt16(NFT_MSG_GETCHAIN.rawValue), family: family.protocolFamily, build: { message in
            let filter = nftnl_chain_alloc()!
            defer { nftnl_chain_free(filter) }
            nftnl_chain_set_str(filter, UInt16(NFTNL_CHAIN_TABLE.rawValue), table)
            nftnl_chain_nlmsg_build_payload(message, filter)
        }) { message in
            let chain = nftnl_chain_alloc()!
            defer { nftnl_chain_free(chain) }
            guard nftnl_chain_nlmsg_parse(message, chain) >= 0 else { return }
            guard string(nftnl_chain_get_str(chain, UInt16(NFTNL_CHAIN_TABLE.rawValue))) == table,
                  let name = string(nftnl_chain_get_str(chain, UInt16(NFTNL_CHAIN_NAME.rawValue))) else { return }
            var base: BaseChain?
            if nftnl_chain_is_set(chain, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue)) {
                let hookNumber = nftnl_chain_get_u32(chain, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue))
                let hooks: [BaseChain.Hook] = [.prerouting, .input, .forward, .output, .postrouting]
                let type = string(nftnl_chain_get_str(chain, UInt16(NFTNL_CHAIN_TYPE.rawValue))) ?? ""
                let policy = nftnl_chain_get_u32(chain, UInt16(NFTNL_CHAIN_POLICY.rawValue))
                if let hook = hooks.first(where: { $0.number == hookNumber }),
                   let chainType = BaseChain.ChainType(rawValue: type), policy == UInt32(NF_ACCEPT) {
                    base = BaseChain(type: chainType, hook: hook,
                                     priority: nftnl_chain_get_s32(chain, UInt16(NFTNL_CHAIN_PRIO.rawValue)))
                } else {
                    // A hook we never write: make it differ from anything desired.
                    base = BaseChain(type: .filter, hook: .prerouting, priority: Int32.min)
                }
            }
            chains.append(Chain(name: name, base: base))
        }
        return chains
    }

    // MARK: - Rules

    /// Rules per chain, in order; nil for a rule that does not decode.
    private func readRules(_ family: TableFamily, _ table: String) throws(NetlinkError) -> [String: [Rule?]] {
        var rules: [String: [Rule?]] = [:]
        let decoder = RuleDecoder(family: family)
        try socket.dump(type: UInt16(NFT_MSG_GETRULE.rawValue), family: family.protocolFamily, build: { message in
            let filter = nftnl_rule_alloc()!
            defer { nftnl_rule_free(filter) }
            nftnl_rule_set_str(filter, UInt16(NFTNL_RULE_TABLE.rawValue), table)
            nftnl_rule_nlmsg_build_payload(message, filter)
        }) { message in
            let rule = nftnl_rule_alloc()!
            defer { nftnl_rule_free(rule) }
            guard nftnl_rule_nlmsg_parse(message, rule) >= 0,
                  string(nftnl_rule_get_str(rule, UInt16(NFTNL_RULE_TABLE.rawValue))) == table,
                  let chain = string(nftnl_rule_get_str(rule, UInt16(NFTNL_RULE_CHAIN.rawValue))) else { return }
            var expressions: [KernelExpression] = []
            let iterator = nftnl_expr_iter_create(rule)!
            defer { nftnl_expr_iter_destroy(iterator) }
            while let expression = nftnl_expr_iter_next(iterator) {
                expressions.append(KernelExpression(expression))
            }
            var decoded: Rule? = try? decoder.decode(expressions)
            if nftnl_rule_is_set(rule, UInt16(NFTNL_RULE_USERDATA.rawValue)) { decoded = nil }  // comments are not ours
            rules[chain, default: []].append(decoded)
        }
        return rules
    }

    // MARK: - Sets

    private struct SetDeclaration {
        var name: String
        /// nil when the declaration cannot be read.
        var set: NamedSet?
    }

    private func readSets(_ family: TableFamily, _ table: String) throws(NetlinkError) -> [SetDeclaration] {
        var declarations: [SetDeclaration] = []
        try socket.dump(type: UInt16(NFT_MSG_GETSET.rawValue), family: family.protocolFamily, build: { message in
            let filter = nftnl_set_alloc()!
            defer { nftnl_set_free(filter) }
            nftnl_set_set_str(filter, UInt16(NFTNL_SET_TABLE.rawValue), table)
            nftnl_set_nlmsg_build_payload(message, filter)
        }) { message in
            let set = nftnl_set_alloc()!
            defer { nftnl_set_free(set) }
            guard nftnl_set_nlmsg_parse(message, set) >= 0,
                  string(nftnl_set_get_str(set, UInt16(NFTNL_SET_TABLE.rawValue))) == table,
                  let name = string(nftnl_set_get_str(set, UInt16(NFTNL_SET_NAME.rawValue))) else { return }
            declarations.append(SetDeclaration(name: name, set: declaration(of: set, name: name, family: family)))
        }
        return declarations
    }

    /// Rebuilds the IR declaration; it must encode back to exactly what the kernel holds.
    private func declaration(of set: OpaquePointer, name: String, family: TableFamily) -> NamedSet? {
        func u32(_ attribute: nftnl_set_attr) -> UInt32 { nftnl_set_get_u32(set, UInt16(attribute.rawValue)) }
        let flags = u32(NFTNL_SET_FLAGS)
        let isMap = flags & UInt32(NFT_SET_MAP.rawValue) != 0
        let interval = flags & UInt32(NFT_SET_INTERVAL.rawValue) != 0
        let known = UInt32(NFT_SET_MAP.rawValue) | UInt32(NFT_SET_INTERVAL.rawValue) | UInt32(NFT_SET_CONCAT.rawValue)
        guard flags & ~known == 0 else { return nil }
        var userData: [UInt8] = []
        var length: UInt32 = 0
        if let pointer = nftnl_set_get_data(set, UInt16(NFTNL_SET_USERDATA.rawValue), &length) {
            userData = Array(UnsafeRawBufferPointer(start: pointer, count: Int(length)))
        }
        let typeOf = SetUserData.decodeTypeOf(userData, family: family)
        guard let keyTypes = SetUserData.dataTypes(ofTypeID: u32(NFTNL_SET_KEY_TYPE)) else { return nil }
        let key: SetFields = typeOf.key.map { .typeOf($0) } ?? .types(keyTypes)
        var data: SetData?
        if isMap {
            if u32(NFTNL_SET_DATA_TYPE) == NFT_DATA_VERDICT.rawValue {
                data = .verdict
            } else if let selectors = typeOf.data {
                data = .fields(.typeOf(selectors))
            } else if let dataTypes = SetUserData.dataTypes(ofTypeID: u32(NFTNL_SET_DATA_TYPE)) {
                data = .fields(.types(dataTypes))
            } else {
                return nil
            }
        }
        let size = nftnl_set_is_set(set, UInt16(NFTNL_SET_DESC_SIZE.rawValue))
            ? Int(u32(NFTNL_SET_DESC_SIZE)) : nil
        let candidate = NamedSet(name: name, key: key, data: data, size: size, interval: interval)
        // Only a declaration that encodes to the same kernel attributes is the one we read.
        guard concatenatedTypeID(key.dataTypes) == u32(NFTNL_SET_KEY_TYPE),
              SetLayout.length(of: key) == Int(u32(NFTNL_SET_KEY_LEN)),
              SetUserData.encode(candidate) == userData else { return nil }
        return candidate
    }

    private func readElements(_ family: TableFamily, _ table: String, _ declaration: NamedSet) throws(NetlinkError) -> [SetElement] {
        var elements: [SetElement] = []
        var malformed = false
        try socket.dump(type: UInt16(NFT_MSG_GETSETELEM.rawValue), family: family.protocolFamily, build: { message in
            let filter = nftnl_set_alloc()!
            defer { nftnl_set_free(filter) }
            nftnl_set_set_str(filter, UInt16(NFTNL_SET_TABLE.rawValue), table)
            nftnl_set_set_str(filter, UInt16(NFTNL_SET_NAME.rawValue), declaration.name)
            nftnl_set_elems_nlmsg_build_payload(message, filter)
        }) { message in
            let set = nftnl_set_alloc()!
            defer { nftnl_set_free(set) }
            guard nftnl_set_elems_nlmsg_parse(message, set) >= 0 else { malformed = true; return }
            let iterator = nftnl_set_elems_iter_create(set)!
            defer { nftnl_set_elems_iter_destroy(iterator) }
            while let element = nftnl_set_elems_iter_next(iterator) {
                guard let decoded = decodeElement(element, declaration) else { malformed = true; continue }
                elements.append(decoded)
            }
        }
        if malformed {
            throw .malformed("set \(declaration.name) of table \(family.rawValue) \(table) holds elements nftproxy cannot read")
        }
        return elements
    }

    private func decodeElement(_ element: OpaquePointer, _ declaration: NamedSet) -> SetElement? {
        func bytes(_ attribute: Int) -> [UInt8]? {
            var length: UInt32 = 0
            guard nftnl_set_elem_is_set(element, UInt16(attribute)),
                  let pointer = nftnl_set_elem_get(element, UInt16(attribute), &length) else { return nil }
            return Array(UnsafeRawBufferPointer(start: pointer, count: Int(length)))
        }
        guard let keyBytes = bytes(NFTNL_SET_ELEM_KEY), let key = SetLayout.values(keyBytes, declaration.key.dataTypes) else {
            return nil
        }
        var keyEnd: [Value]?
        if declaration.interval {
            guard let endBytes = bytes(NFTNL_SET_ELEM_KEY_END),
                  let end = SetLayout.values(endBytes, declaration.key.dataTypes) else { return nil }
            keyEnd = end
        }
        if declaration.data == nil { return SetElement(key: key, keyEnd: keyEnd) }
        switch declaration.data {
        case nil:
            return SetElement(key: key)
        case .verdict:
            let code = Int32(bitPattern: nftnl_set_elem_get_u32(element, UInt16(NFTNL_SET_ELEM_VERDICT)))
            let chain = nftnl_set_elem_get_str(element, UInt16(NFTNL_SET_ELEM_CHAIN)).map { String(cString: $0) }
            let verdict: Verdict
            switch (code, chain) {
            case (Verdict.goto("").code, let chain?): verdict = .goto(chain)
            case (Verdict.jump("").code, let chain?): verdict = .jump(chain)
            case (Verdict.accept.code, nil): verdict = .accept
            case (Verdict.drop.code, nil): verdict = .drop
            default: return nil
            }
            return SetElement(key: key, data: .verdict(verdict))
        case .fields(let fields):
            guard let dataBytes = bytes(NFTNL_SET_ELEM_DATA), let values = SetLayout.values(dataBytes, fields.dataTypes) else {
                return nil
            }
            return SetElement(key: key, data: .values(values))
        }
    }

    private func string(_ pointer: UnsafePointer<CChar>?) -> String? { pointer.map { String(cString: $0) } }
}

extension SetLayout {
    /// Splits key or data bytes into values of the given types (the inverse of `bytes(of:)`).
    static func values(_ bytes: [UInt8], _ types: [DataType]) -> [Value]? {
        if types.count == 1 { return Value.decode(bytes, as: types[0]).map { [$0] } }
        var values: [Value] = []
        var offset = 0
        for type in types {
            guard offset + type.size <= bytes.count,
                  let value = Value.decode(Array(bytes[offset..<(offset + type.size)]), as: type) else { return nil }
            values.append(value)
            offset += (type.size + 3) / 4 * 4
        }
        return offset == bytes.count ? values : nil
    }
}
