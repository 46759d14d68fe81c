import CNetfilter

/// Encodes `Operation`s as nf_tables netlink messages through libnftnl.
///
/// Sets created in the transaction get an NFTA_SET_ID, and lookups of those sets carry
/// it too, as nft does, so the kernel binds them within the one transaction.
struct MessageEncoder {
    private var setIDs: [TableFamily: [String: UInt32]] = [:]

    init(transaction: Transaction) {
        var next: UInt32 = 1
        for case .addSet(let family, _, let set) in transaction.operations {
            setIDs[family, default: [:]][set.name] = next
            next += 1
        }
    }

    /// Message type and the flags beyond NLM_F_REQUEST/NLM_F_ACK.
    func header(for operation: Operation) -> (type: UInt16, flags: UInt16, family: UInt8) {
        let create = UInt16(NLM_F_CREATE)
        switch operation {
        case .addTable(let family, _): return (UInt16(NFT_MSG_NEWTABLE.rawValue), create, family.protocolFamily)
        case .deleteTable(let family, _): return (UInt16(NFT_MSG_DELTABLE.rawValue), 0, family.protocolFamily)
        case .addChain(let family, _, _): return (UInt16(NFT_MSG_NEWCHAIN.rawValue), create, family.protocolFamily)
        case .flushChain(let family, _, _): return (UInt16(NFT_MSG_DELRULE.rawValue), 0, family.protocolFamily)
        case .deleteChain(let family, _, _): return (UInt16(NFT_MSG_DELCHAIN.rawValue), 0, family.protocolFamily)
        case .addSet(let family, _, _): return (UInt16(NFT_MSG_NEWSET.rawValue), create, family.protocolFamily)
        case .deleteSet(let family, _, _): return (UInt16(NFT_MSG_DELSET.rawValue), 0, family.protocolFamily)
        case .addElements(let family, _, _, _): return (UInt16(NFT_MSG_NEWSETELEM.rawValue), create, family.protocolFamily)
        case .deleteElements(let family, _, _, _): return (UInt16(NFT_MSG_DELSETELEM.rawValue), 0, family.protocolFamily)
        case .addRule(let family, _, _, _):
            return (UInt16(NFT_MSG_NEWRULE.rawValue), create | UInt16(NLM_F_APPEND), family.protocolFamily)
        }
    }

    /// Writes the payload of `operation` into a message whose header is already in place.
    func encode(_ operation: Operation, into message: UnsafeMutablePointer<nlmsghdr>) {
        switch operation {
        case .addTable(_, let name), .deleteTable(_, let name):
            let table = nftnl_table_alloc()!
            defer { nftnl_table_free(table) }
            nftnl_table_set_str(table, UInt16(NFTNL_TABLE_NAME.rawValue), name)
            if case .addTable = operation {
                nftnl_table_set_u32(table, UInt16(NFTNL_TABLE_FLAGS.rawValue), 0)
            }
            nftnl_table_nlmsg_build_payload(message, table)

        case .addChain(_, let table, let chain):
            let nftChain = makeChain(table: table, name: chain.name)
            defer { nftnl_chain_free(nftChain) }
            if let base = chain.base {
                nftnl_chain_set_u32(nftChain, UInt16(NFTNL_CHAIN_HOOKNUM.rawValue), base.hook.number)
                nftnl_chain_set_s32(nftChain, UInt16(NFTNL_CHAIN_PRIO.rawValue), base.priority)
                nftnl_chain_set_str(nftChain, UInt16(NFTNL_CHAIN_TYPE.rawValue), base.type.rawValue)
                nftnl_chain_set_u32(nftChain, UInt16(NFTNL_CHAIN_POLICY.rawValue), UInt32(NF_ACCEPT))
            }
            nftnl_chain_nlmsg_build_payload(message, nftChain)

        case .deleteChain(_, let table, let chain):
            let nftChain = makeChain(table: table, name: chain)
            defer { nftnl_chain_free(nftChain) }
            nftnl_chain_nlmsg_build_payload(message, nftChain)

        case .flushChain(_, let table, let chain):
            let rule = nftnl_rule_alloc()!
            defer { nftnl_rule_free(rule) }
            nftnl_rule_set_str(rule, UInt16(NFTNL_RULE_TABLE.rawValue), table)
            nftnl_rule_set_str(rule, UInt16(NFTNL_RULE_CHAIN.rawValue), chain)
            nftnl_rule_nlmsg_build_payload(message, rule)

        case .addSet(let family, let table, let set):
            let nftSet = makeSet(family: family, table: table, name: set.name)
            defer { nftnl_set_free(nftSet) }
            describe(set, into: nftSet, family: family)
            nftnl_set_nlmsg_build_payload(message, nftSet)

        case .deleteSet(let family, let table, let set):
            let nftSet = makeSet(family: family, table: table, name: set)
            defer { nftnl_set_free(nftSet) }
            nftnl_set_nlmsg_build_payload(message, nftSet)

        case .addElements(let family, let table, let set, let elements),
             .deleteElements(let family, let table, let set, let elements):
            let nftSet = makeSet(family: family, table: table, name: set.name)
            defer { nftnl_set_free(nftSet) }
            if case .addElements = operation, let id = setIDs[family]?[set.name] {
                nftnl_set_set_u32(nftSet, UInt16(NFTNL_SET_ID.rawValue), id)
            }
            for element in elements {
                nftnl_set_elem_add(nftSet, makeElement(element))
            }
            nftnl_set_elems_nlmsg_build_payload(message, nftSet)

        case .addRule(let family, let table, let chain, let rule):
            let encoder = RuleEncoder(family: family, setIDs: setIDs[family] ?? [:])
            let nftRule = encoder.makeRule(rule, table: table, chain: chain)
            defer { nftnl_rule_free(nftRule) }
            nftnl_rule_nlmsg_build_payload(message, nftRule)
        }
    }

    private func makeChain(table: String, name: String) -> OpaquePointer {
        let chain = nftnl_chain_alloc()!
        nftnl_chain_set_str(chain, UInt16(NFTNL_CHAIN_TABLE.rawValue), table)
        nftnl_chain_set_str(chain, UInt16(NFTNL_CHAIN_NAME.rawValue), name)
        return chain
    }

    private func makeSet(family: TableFamily, table: String, name: String) -> OpaquePointer {
        let set = nftnl_set_alloc()!
        nftnl_set_set_u32(set, UInt16(NFTNL_SET_FAMILY.rawValue), UInt32(family.protocolFamily))
        nftnl_set_set_str(set, UInt16(NFTNL_SET_TABLE.rawValue), table)
        nftnl_set_set_str(set, UInt16(NFTNL_SET_NAME.rawValue), name)
        return set
    }

    /// Key and data types, lengths, flags, size, id and userdata, as nft declares them.
    private func describe(_ set: NamedSet, into nftSet: OpaquePointer, family: TableFamily) {
        var flags = set.isMap ? UInt32(NFT_SET_MAP.rawValue) : 0
        if set.interval {
            flags |= UInt32(NFT_SET_INTERVAL.rawValue)
            if set.key.dataTypes.count > 1 { flags |= UInt32(NFT_SET_CONCAT.rawValue) }
        }
        nftnl_set_set_u32(nftSet, UInt16(NFTNL_SET_FLAGS.rawValue), flags)
        nftnl_set_set_u32(nftSet, UInt16(NFTNL_SET_KEY_TYPE.rawValue), concatenatedTypeID(set.key.dataTypes))
        nftnl_set_set_u32(nftSet, UInt16(NFTNL_SET_KEY_LEN.rawValue), UInt32(SetLayout.length(of: set.key)))
        switch set.data {
        case nil:
            break
        case .verdict:
            nftnl_set_set_u32(nftSet, UInt16(NFTNL_SET_DATA_TYPE.rawValue), NFT_DATA_VERDICT.rawValue)
            nftnl_set_set_u32(nftSet, UInt16(NFTNL_SET_DATA_LEN.rawValue), 0)
        case .fields(let fields):
            nftnl_set_set_u32(nftSet, UInt16(NFTNL_SET_DATA_TYPE.rawValue), concatenatedTypeID(fields.dataTypes))
            nftnl_set_set_u32(nftSet, UInt16(NFTNL_SET_DATA_LEN.rawValue), UInt32(SetLayout.length(of: fields)))
        }
        if let size = set.size {
            nftnl_set_set_u32(nftSet, UInt16(NFTNL_SET_DESC_SIZE.rawValue), UInt32(clamping: size))
        }
        if set.interval, set.key.dataTypes.count > 1 {
            // The length of each field, as nft describes a concatenation of ranges.
            let lengths = set.key.dataTypes.map { UInt8($0.size) }
            lengths.withUnsafeBytes {
                _ = nftnl_set_set_data(nftSet, UInt16(NFTNL_SET_DESC_CONCAT.rawValue), $0.baseAddress, UInt32($0.count))
            }
        }
        if let id = setIDs[family]?[set.name] {
            nftnl_set_set_u32(nftSet, UInt16(NFTNL_SET_ID.rawValue), id)
        }
        let userData = SetUserData.encode(set)
        userData.withUnsafeBytes {
            _ = nftnl_set_set_data(nftSet, UInt16(NFTNL_SET_USERDATA.rawValue), $0.baseAddress, UInt32($0.count))
        }
    }

    private func makeElement(_ element: SetElement) -> OpaquePointer {
        let nftElement = nftnl_set_elem_alloc()!
        let key = SetLayout.bytes(of: element.key)
        key.withUnsafeBytes {
            _ = nftnl_set_elem_set(nftElement, UInt16(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32($0.count))
        }
        if let keyEnd = element.keyEnd {
            SetLayout.bytes(of: keyEnd).withUnsafeBytes {
                _ = nftnl_set_elem_set(nftElement, UInt16(NFTNL_SET_ELEM_KEY_END), $0.baseAddress, UInt32($0.count))
            }
        }
        switch element.data {
        case nil:
            break
        case .verdict(let verdict):
            nftnl_set_elem_set_u32(nftElement, UInt16(NFTNL_SET_ELEM_VERDICT), UInt32(bitPattern: verdict.code))
            if let chain = verdict.chain {
                nftnl_set_elem_set_str(nftElement, UInt16(NFTNL_SET_ELEM_CHAIN), chain)
            }
        case .values(let values):
            let data = SetLayout.bytes(of: values)
            data.withUnsafeBytes {
                _ = nftnl_set_elem_set(nftElement, UInt16(NFTNL_SET_ELEM_DATA), $0.baseAddress, UInt32($0.count))
            }
        }
        return nftElement
    }
}
