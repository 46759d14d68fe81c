import CNetfilter

/// Dumps of nf_tables objects, read into ``NftTable``, ``NftChain``, ``NftRule``,
/// ``NftSet`` and ``NftSetElement`` values.
extension NetlinkSocket {
    /// The tables of `family` (``NetfilterFamily``).
    public func tables(family: UInt8) throws(NetlinkError) -> [NftTable] {
        var tables: [NftTable] = []
        try dump(type: NftMessage.getTable, family: family) { message in
            // A table libnftnl cannot parse is not one of ours: skipped.
            if let table = try? NftTable(parsing: message) { tables.append(table) }
        }
        return tables
    }

    /// The chains of table `table`.
    public func chains(family: UInt8, table: String) throws(NetlinkError) -> [NftChain] {
        var chains: [NftChain] = []
        try dump(type: NftMessage.getChain, family: family, build: { (message) throws(NetlinkError) in
            let filter = try NftnlChain()
            defer { withExtendedLifetime(filter) {} }
            nftnl_chain_set_str(filter.object, UInt16(NFTNL_CHAIN_TABLE.rawValue), table)
            nftnl_chain_nlmsg_build_payload(message.header, filter.object)
        }) { message in
            if let chain = try? NftChain(parsing: message), chain.table == table { chains.append(chain) }
        }
        return chains
    }

    /// The rules of table `table`, in each chain's order.
    public func rules(family: UInt8, table: String) throws(NetlinkError) -> [NftRule] {
        var rules: [NftRule] = []
        try dump(type: NftMessage.getRule, family: family, build: { (message) throws(NetlinkError) in
            let filter = try NftnlRule()
            defer { withExtendedLifetime(filter) {} }
            nftnl_rule_set_str(filter.object, UInt16(NFTNL_RULE_TABLE.rawValue), table)
            nftnl_rule_nlmsg_build_payload(message.header, filter.object)
        }) { message in
            if let rule = try? NftRule(parsing: message), rule.table == table { rules.append(rule) }
        }
        return rules
    }

    /// The set and map declarations of table `table` (without elements).
    public func sets(family: UInt8, table: String) throws(NetlinkError) -> [NftSet] {
        var sets: [NftSet] = []
        try dump(type: NftMessage.getSet, family: family, build: { (message) throws(NetlinkError) in
            let filter = try NftnlSet()
            defer { withExtendedLifetime(filter) {} }
            nftnl_set_set_str(filter.object, UInt16(NFTNL_SET_TABLE.rawValue), table)
            nftnl_set_nlmsg_build_payload(message.header, filter.object)
        }) { message in
            if let set = try? NftSet(parsing: message), set.table == table { sets.append(set) }
        }
        return sets
    }

    /// The elements of set `set` of table `table`.
    ///
    /// - Throws: ``NetlinkError/malformed(_:)`` when a dumped element message cannot be parsed.
    public func elements(family: UInt8, table: String, set: String) throws(NetlinkError) -> [NftSetElement] {
        var elements: [NftSetElement] = []
        try forEachElement(family: family, table: table, set: set) { elements.append($0) }
        return elements
    }

    /// Calls `body` with each element of set `set` of table `table`, without collecting
    /// them: large sets are read back element by element.
    ///
    /// - Throws: ``NetlinkError/malformed(_:)`` when a dumped element message cannot be
    ///   parsed, and what `body` throws (as ``dump(subsystem:type:family:build:each:)`` does).
    public func forEachElement(
        family: UInt8, table: String, set: String, _ body: (NftSetElement) throws -> Void
    ) throws(NetlinkError) {
        elementDumps.append(set)
        try dump(type: NftMessage.getElements, family: family, build: { (message) throws(NetlinkError) in
            let filter = try NftnlSet()
            defer { withExtendedLifetime(filter) {} }
            nftnl_set_set_str(filter.object, UInt16(NFTNL_SET_TABLE.rawValue), table)
            nftnl_set_set_str(filter.object, UInt16(NFTNL_SET_NAME.rawValue), set)
            nftnl_set_elems_nlmsg_build_payload(message.header, filter.object)
        }) { message in
            try NftSet.forEachElement(parsing: message, body)
        }
    }
}
