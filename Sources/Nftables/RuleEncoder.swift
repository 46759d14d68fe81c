import CNetfilter
import ServiceModel

/// Turns typed statements into libnftnl expressions, the same bytecode nft generates for
/// the same rule text (so `nft list ruleset` prints our rules as our dump wrote them).
///
/// Registers follow nft's convention: values are laid out in 32-bit slots starting at
/// NFT_REG_1; a slot on a 16-byte boundary is named by its 128-bit register number.
struct RuleEncoder {
    let family: TableFamily
    /// Set name -> NFTA_SET_ID, for sets created in the same batch.
    let setIDs: [String: UInt32]

    /// Builds an `nftnl_rule` for `rule` in `table`/`chain`. The caller frees it.
    func makeRule(_ rule: Rule, table: String, chain: String) -> OpaquePointer {
        let nftRule = nftnl_rule_alloc()!
        nftnl_rule_set_u32(nftRule, UInt16(NFTNL_RULE_FAMILY.rawValue), UInt32(family.protocolFamily))
        nftnl_rule_set_str(nftRule, UInt16(NFTNL_RULE_TABLE.rawValue), table)
        nftnl_rule_set_str(nftRule, UInt16(NFTNL_RULE_CHAIN.rawValue), chain)
        for statement in rule.statements {
            for expression in expressions(for: statement) {
                nftnl_rule_add_expr(nftRule, expression)
            }
        }
        return nftRule
    }

    // MARK: - Registers

    /// nft's register number for a 32-bit slot offset from NFT_REG_1.
    static func register(slot: Int) -> UInt32 {
        slot % 4 == 0 ? UInt32(NFT_REG_1.rawValue) + UInt32(slot / 4) : UInt32(NFT_REG32_00.rawValue) + UInt32(slot)
    }

    /// Slots a value of `size` bytes occupies.
    static func slots(_ size: Int) -> Int { (size + 3) / 4 }

    private static let verdictRegister = UInt32(NFT_REG_VERDICT.rawValue)

    // MARK: - Statements

    private func expressions(for statement: Statement) -> [OpaquePointer] {
        let reg1 = Self.register(slot: 0)
        switch statement {
        case .compare(let selector, let negated, let value):
            return [load(selector, into: reg1), compare(reg1, negated ? NFT_CMP_NEQ : NFT_CMP_EQ, value.bytes)]

        case .prefix(let selector, let network, let length, let negated):
            let op = negated ? NFT_CMP_NEQ : NFT_CMP_EQ
            if length % 8 == 0, case .address(_, let family) = selector {
                // Byte-aligned prefix: nft loads only the prefix bytes.
                let bytes = Array(network.bytes.prefix(length / 8))
                return [payload(.network, offset: addressOffset(selector, family), length: bytes.count, into: reg1),
                        compare(reg1, op, bytes)]
            }
            let size = network.bytes.count
            var mask = [UInt8](repeating: 0, count: size)
            for bit in 0..<length { mask[bit / 8] |= 0x80 >> UInt8(bit % 8) }
            return [load(selector, into: reg1),
                    bitwise(reg1, length: size, mask: mask, xor: [UInt8](repeating: 0, count: size)),
                    compare(reg1, op, network.bytes)]

        case .bitTest(let selector, let mask, let isSet):
            let zero = Value.integer(0).bytes
            return [load(selector, into: reg1),
                    bitwise(reg1, length: 4, mask: Value.integer(mask).bytes, xor: zero),
                    compare(reg1, isSet ? NFT_CMP_NEQ : NFT_CMP_EQ, zero)]

        case .lookup(let selectors, let set):
            return loadConcatenation(selectors) + [lookup(set, destination: nil)]

        case .verdictMap(let selectors, let map):
            return loadConcatenation(selectors) + [lookup(map, destination: Self.verdictRegister)]

        case .setMarkBits(let bits):
            return markUpdate(mask: ~bits, xor: bits)

        case .toggleMarkBits(let bits):
            return markUpdate(mask: 0xffff_ffff, xor: bits)

        case .verdict(let verdict):
            return [immediate(verdict)]

        case .dnatMap(let selectors, let map, let family):
            let loads = loadConcatenation(selectors)
            let nat = expression("nat")
            nftnl_expr_set_u32(nat, UInt16(NFTNL_EXPR_NAT_TYPE), UInt32(NFT_NAT_DNAT.rawValue))
            nftnl_expr_set_u32(nat, UInt16(NFTNL_EXPR_NAT_FAMILY), UInt32(family.protocolFamily))
            nftnl_expr_set_u32(nat, UInt16(NFTNL_EXPR_NAT_REG_ADDR_MIN), reg1)
            nftnl_expr_set_u32(nat, UInt16(NFTNL_EXPR_NAT_REG_PROTO_MIN),
                               Self.register(slot: Self.slots(family.addressLength)))
            return loads + [lookup(map, destination: reg1), nat]

        case .masquerade(let fullyRandom):
            let masq = expression("masq")
            if fullyRandom {
                nftnl_expr_set_u32(masq, UInt16(NFTNL_EXPR_MASQ_FLAGS), UInt32(NF_NAT_RANGE_PROTO_RANDOM_FULLY))
            }
            return [masq]

        case .reject(let kind):
            let reject = expression("reject")
            switch kind {
            case .tcpReset:
                nftnl_expr_set_u32(reject, UInt16(NFTNL_EXPR_REJECT_TYPE), UInt32(NFT_REJECT_TCP_RST.rawValue))
                nftnl_expr_set_u8(reject, UInt16(NFTNL_EXPR_REJECT_CODE), 0)
            case .portUnreachable:
                nftnl_expr_set_u32(reject, UInt16(NFTNL_EXPR_REJECT_TYPE), UInt32(NFT_REJECT_ICMP_UNREACH.rawValue))
                // ICMP_PORT_UNREACH (3) / ICMPV6_PORT_UNREACH (4)
                nftnl_expr_set_u8(reject, UInt16(NFTNL_EXPR_REJECT_CODE), family == .ip ? 3 : 4)
            }
            return [reject]

        case .counter:
            return [expression("counter")]
        }
    }

    // MARK: - Loads

    private enum PayloadBase { case network, transport }

    private func addressOffset(_ selector: Selector, _ family: TableFamily) -> Int {
        guard case .address(let field, _) = selector else { return 0 }
        switch (family, field) {
        case (.ip, .source): return 12
        case (.ip, .destination): return 16
        case (.ip6, .source): return 8
        case (.ip6, .destination): return 24
        }
    }

    /// Loads the selector's value into `register`.
    private func load(_ selector: Selector, into register: UInt32) -> OpaquePointer {
        switch selector {
        case .address(_, let family):
            return payload(.network, offset: addressOffset(selector, family), length: family.addressLength, into: register)
        case .transportDestinationPort:
            return payload(.transport, offset: 2, length: 2, into: register)
        case .l4proto:
            return meta(NFT_META_L4PROTO, into: register)
        case .mark:
            return meta(NFT_META_MARK, into: register)
        case .randomNumber(let modulus):
            let numgen = expression("numgen")
            nftnl_expr_set_u32(numgen, UInt16(NFTNL_EXPR_NG_DREG), register)
            nftnl_expr_set_u32(numgen, UInt16(NFTNL_EXPR_NG_MODULUS), modulus)
            nftnl_expr_set_u32(numgen, UInt16(NFTNL_EXPR_NG_TYPE), UInt32(NFT_NG_RANDOM.rawValue))
            nftnl_expr_set_u32(numgen, UInt16(NFTNL_EXPR_NG_OFFSET), 0)
            return numgen
        case .fibDestinationType:
            let fib = expression("fib")
            nftnl_expr_set_u32(fib, UInt16(NFTNL_EXPR_FIB_DREG), register)
            nftnl_expr_set_u32(fib, UInt16(NFTNL_EXPR_FIB_RESULT), UInt32(NFT_FIB_RESULT_ADDRTYPE.rawValue))
            nftnl_expr_set_u32(fib, UInt16(NFTNL_EXPR_FIB_FLAGS), UInt32(NFTA_FIB_F_DADDR.rawValue))
            return fib
        case .fibSourceType:
            let fib = expression("fib")
            nftnl_expr_set_u32(fib, UInt16(NFTNL_EXPR_FIB_DREG), register)
            nftnl_expr_set_u32(fib, UInt16(NFTNL_EXPR_FIB_RESULT), UInt32(NFT_FIB_RESULT_ADDRTYPE.rawValue))
            nftnl_expr_set_u32(fib, UInt16(NFTNL_EXPR_FIB_FLAGS), UInt32(NFTA_FIB_F_SADDR.rawValue))
            return fib
        case .ctState:
            return ct(NFT_CT_STATE, into: register)
        case .ctStatus:
            return ct(NFT_CT_STATUS, into: register)
        }
    }

    /// Loads a concatenation into consecutive 32-bit slots from NFT_REG_1.
    private func loadConcatenation(_ selectors: [Selector]) -> [OpaquePointer] {
        var slot = 0
        var result: [OpaquePointer] = []
        for selector in selectors {
            result.append(load(selector, into: Self.register(slot: slot)))
            slot += Self.slots(selector.dataType.size)
        }
        return result
    }

    private func payload(_ base: PayloadBase, offset: Int, length: Int, into register: UInt32) -> OpaquePointer {
        let payload = expression("payload")
        nftnl_expr_set_u32(payload, UInt16(NFTNL_EXPR_PAYLOAD_DREG), register)
        nftnl_expr_set_u32(payload, UInt16(NFTNL_EXPR_PAYLOAD_BASE),
                           base == .network ? UInt32(NFT_PAYLOAD_NETWORK_HEADER.rawValue)
                                            : UInt32(NFT_PAYLOAD_TRANSPORT_HEADER.rawValue))
        nftnl_expr_set_u32(payload, UInt16(NFTNL_EXPR_PAYLOAD_OFFSET), UInt32(offset))
        nftnl_expr_set_u32(payload, UInt16(NFTNL_EXPR_PAYLOAD_LEN), UInt32(length))
        return payload
    }

    private func meta(_ key: nft_meta_keys, into register: UInt32) -> OpaquePointer {
        let meta = expression("meta")
        nftnl_expr_set_u32(meta, UInt16(NFTNL_EXPR_META_KEY), UInt32(key.rawValue))
        nftnl_expr_set_u32(meta, UInt16(NFTNL_EXPR_META_DREG), register)
        return meta
    }

    private func ct(_ key: nft_ct_keys, into register: UInt32) -> OpaquePointer {
        let ct = expression("ct")
        nftnl_expr_set_u32(ct, UInt16(NFTNL_EXPR_CT_KEY), UInt32(key.rawValue))
        nftnl_expr_set_u32(ct, UInt16(NFTNL_EXPR_CT_DREG), register)
        return ct
    }

    // MARK: - Other expressions

    private func compare(_ register: UInt32, _ op: nft_cmp_ops, _ bytes: [UInt8]) -> OpaquePointer {
        let cmp = expression("cmp")
        nftnl_expr_set_u32(cmp, UInt16(NFTNL_EXPR_CMP_SREG), register)
        nftnl_expr_set_u32(cmp, UInt16(NFTNL_EXPR_CMP_OP), UInt32(op.rawValue))
        bytes.withUnsafeBytes { _ = nftnl_expr_set(cmp, UInt16(NFTNL_EXPR_CMP_DATA), $0.baseAddress, UInt32($0.count)) }
        return cmp
    }

    private func bitwise(_ register: UInt32, length: Int, mask: [UInt8], xor: [UInt8]) -> OpaquePointer {
        let bitwise = expression("bitwise")
        nftnl_expr_set_u32(bitwise, UInt16(NFTNL_EXPR_BITWISE_SREG), register)
        nftnl_expr_set_u32(bitwise, UInt16(NFTNL_EXPR_BITWISE_DREG), register)
        nftnl_expr_set_u32(bitwise, UInt16(NFTNL_EXPR_BITWISE_LEN), UInt32(length))
        mask.withUnsafeBytes { _ = nftnl_expr_set(bitwise, UInt16(NFTNL_EXPR_BITWISE_MASK), $0.baseAddress, UInt32($0.count)) }
        xor.withUnsafeBytes { _ = nftnl_expr_set(bitwise, UInt16(NFTNL_EXPR_BITWISE_XOR), $0.baseAddress, UInt32($0.count)) }
        return bitwise
    }

    /// `meta mark set meta mark & mask ^ xor`
    private func markUpdate(mask: UInt32, xor: UInt32) -> [OpaquePointer] {
        let reg1 = Self.register(slot: 0)
        let set = expression("meta")
        nftnl_expr_set_u32(set, UInt16(NFTNL_EXPR_META_KEY), UInt32(NFT_META_MARK.rawValue))
        nftnl_expr_set_u32(set, UInt16(NFTNL_EXPR_META_SREG), reg1)
        return [meta(NFT_META_MARK, into: reg1),
                bitwise(reg1, length: 4, mask: Value.integer(mask).bytes, xor: Value.integer(xor).bytes),
                set]
    }

    private func lookup(_ set: String, destination: UInt32?) -> OpaquePointer {
        let lookup = expression("lookup")
        nftnl_expr_set_u32(lookup, UInt16(NFTNL_EXPR_LOOKUP_SREG), Self.register(slot: 0))
        if let destination {
            nftnl_expr_set_u32(lookup, UInt16(NFTNL_EXPR_LOOKUP_DREG), destination)
        }
        nftnl_expr_set_str(lookup, UInt16(NFTNL_EXPR_LOOKUP_SET), set)
        if let id = setIDs[set] {
            nftnl_expr_set_u32(lookup, UInt16(NFTNL_EXPR_LOOKUP_SET_ID), id)
        }
        return lookup
    }

    private func immediate(_ verdict: Verdict) -> OpaquePointer {
        let immediate = expression("immediate")
        nftnl_expr_set_u32(immediate, UInt16(NFTNL_EXPR_IMM_DREG), Self.verdictRegister)
        nftnl_expr_set_u32(immediate, UInt16(NFTNL_EXPR_IMM_VERDICT), UInt32(bitPattern: verdict.code))
        if let chain = verdict.chain {
            nftnl_expr_set_str(immediate, UInt16(NFTNL_EXPR_IMM_CHAIN), chain)
        }
        return immediate
    }

    private func expression(_ name: String) -> OpaquePointer {
        guard let expression = nftnl_expr_alloc(name) else {
            fatalError("libnftnl does not know expression \(name)")  // a build-time invariant, not input
        }
        return expression
    }
}
