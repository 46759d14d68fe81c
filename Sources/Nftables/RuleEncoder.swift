import Netlink
import ServiceModel

/// Turns typed statements into nf_tables expressions, the same bytecode nft generates for
/// the same rule text (so `nft list ruleset` prints our rules as our dump wrote them).
///
/// Registers follow nft's convention: values are laid out in 32-bit slots starting at
/// NFT_REG_1 (``NftRegister/slot(_:)``).
struct RuleEncoder {
    let family: TableFamily
    /// Set name -> NFTA_SET_ID, for sets created in the same batch.
    let setIDs: [String: UInt32]

    /// The wire form of `rule` in `table`/`chain`.
    func makeRule(_ rule: Rule, table: String, chain: String) -> NftRule {
        NftRule(family: family.protocolFamily, table: table, chain: chain,
                expressions: rule.statements.flatMap(expressions(for:)))
    }

    // MARK: - Statements

    /// The expressions of one statement.
    func expressions(for statement: Statement) -> [NftExpression] {
        let reg1 = NftRegister.slot(0)
        switch statement {
        case .compare(let selector, let negated, let value):
            return [load(selector, into: reg1), .compare(source: reg1, op: negated ? .notEqual : .equal, data: value.bytes)]

        case .prefix(let selector, let network, let length, let negated):
            let op: NftCompareOperator = negated ? .notEqual : .equal
            if length % 8 == 0, case .address(_, let family) = selector {
                // Byte-aligned prefix: nft loads only the prefix bytes.
                let bytes = Array(network.bytes.prefix(length / 8))
                return [.payload(base: .network, offset: UInt32(addressOffset(selector, family)),
                                 length: UInt32(bytes.count), destination: reg1),
                        .compare(source: reg1, op: op, data: bytes)]
            }
            let size = network.bytes.count
            var mask = [UInt8](repeating: 0, count: size)
            for bit in 0..<length { mask[bit / 8] |= 0x80 >> UInt8(bit % 8) }
            return [load(selector, into: reg1),
                    bitwise(reg1, length: size, mask: mask, xor: [UInt8](repeating: 0, count: size)),
                    .compare(source: reg1, op: op, data: network.bytes)]

        case .bitTest(let selector, let mask, let isSet):
            let zero = Value.integer(0).bytes
            return [load(selector, into: reg1),
                    bitwise(reg1, length: 4, mask: Value.integer(mask).bytes, xor: zero),
                    .compare(source: reg1, op: isSet ? .notEqual : .equal, data: zero)]

        case .lookup(let selectors, let set):
            return loadConcatenation(selectors) + [lookup(set, destination: nil)]

        case .verdictMap(let selectors, let map):
            return loadConcatenation(selectors) + [lookup(map, destination: .verdict)]

        case .setMarkBits(let bits):
            return markUpdate(mask: ~bits, xor: bits)

        case .toggleMarkBits(let bits):
            return markUpdate(mask: 0xffff_ffff, xor: bits)

        case .verdict(let verdict):
            return [.verdict(code: verdict.code, chain: verdict.chain)]

        case .dnatMap(let selectors, let map, let family):
            return loadConcatenation(selectors) + [
                lookup(map, destination: reg1),
                .nat(type: .destination, family: UInt32(family.protocolFamily), addressRegister: reg1,
                     protoRegister: .slot(NftRegister.slots(forBytes: family.addressLength)), flags: 0),
            ]

        case .masquerade(let fullyRandom):
            return [.masquerade(flags: fullyRandom ? NftNatRangeFlag.randomFully : 0)]

        case .reject(let kind):
            switch kind {
            case .tcpReset:
                return [.reject(type: .tcpReset, code: 0)]
            case .portUnreachable:
                return [.reject(type: .icmpUnreachable,
                                code: family == .ip ? NftRejectCode.icmpPortUnreachable : NftRejectCode.icmpv6PortUnreachable)]
            }

        case .counter:
            return [.counter(packets: 0, bytes: 0)]

        case .updateSet(let selectors, let set, let timeout):
            return loadConcatenation(selectors) + [
                .dynset(operation: .update, set: set, setID: setIDs[set], keyRegister: .slot(0), dataRegister: nil,
                        timeout: timeout, expressions: []),
            ]

        case .updateMap(let selectors, let data, let map, let timeout):
            return mapElementChange(.update, key: selectors, data: data, map: map, timeout: timeout)

        case .deleteFromMap(let selectors, let data, let map):
            return mapElementChange(.delete, key: selectors, data: data, map: map, timeout: nil)
        }
    }

    /// `update` / `delete @map { key : data }`: the key from NFT_REG_1, the data from the
    /// next 128-bit register after it (nft allocates whole registers per expression).
    private func mapElementChange(_ operation: NftDynsetOperation, key: [Selector], data: [Selector], map: String,
                                  timeout: UInt64?) -> [NftExpression] {
        let keySlots = key.reduce(0) { $0 + NftRegister.slots(forBytes: $1.dataType.size) }
        let dataSlot = (keySlots + 3) / 4 * 4
        return loadConcatenation(key) + loadConcatenation(data, from: dataSlot) + [
            .dynset(operation: operation, set: map, setID: setIDs[map], keyRegister: .slot(0),
                    dataRegister: .slot(dataSlot), timeout: timeout, expressions: []),
        ]
    }

    // MARK: - Loads

    /// Offset of the address field in the network header.
    func addressOffset(_ selector: Selector, _ family: TableFamily) -> Int {
        guard case .address(let field, _) = selector else { return 0 }
        switch (family, field) {
        case (.ip, .source): return 12
        case (.ip, .destination): return 16
        case (.ip6, .source): return 8
        case (.ip6, .destination): return 24
        }
    }

    /// Loads the selector's value into `register`.
    private func load(_ selector: Selector, into register: NftRegister) -> NftExpression {
        switch selector {
        case .address(_, let family):
            return .payload(base: .network, offset: UInt32(addressOffset(selector, family)),
                            length: UInt32(family.addressLength), destination: register)
        case .transportDestinationPort:
            return .payload(base: .transport, offset: 2, length: 2, destination: register)
        case .l4proto:
            return .metaLoad(key: .l4proto, destination: register)
        case .mark:
            return .metaLoad(key: .mark, destination: register)
        case .randomNumber(let modulus):
            return .numgen(type: .random, modulus: modulus, offset: 0, destination: register)
        case .fibDestinationType:
            return .fib(result: .addressType, flags: .destinationAddress, destination: register)
        case .fibSourceType:
            return .fib(result: .addressType, flags: .sourceAddress, destination: register)
        case .ctState:
            return .ctLoad(key: .state, direction: nil, destination: register)
        case .ctStatus:
            return .ctLoad(key: .status, direction: nil, destination: register)
        case .ctAddress(let field, let direction, let family):
            let key: NftCtKey = switch (family, field) {
            case (.ip, .source): .ipv4Source
            case (.ip, .destination): .ipv4Destination
            case (.ip6, .source): .ipv6Source
            case (.ip6, .destination): .ipv6Destination
            }
            return .ctLoad(key: key, direction: direction.rawValue, destination: register)
        case .ctPort(let field, let direction):
            return .ctLoad(key: field == .source ? .protoSource : .protoDestination, direction: direction.rawValue,
                           destination: register)
        }
    }

    /// Loads a concatenation into consecutive 32-bit slots from `first` (NFT_REG_1).
    private func loadConcatenation(_ selectors: [Selector], from first: Int = 0) -> [NftExpression] {
        var slot = first
        var result: [NftExpression] = []
        for selector in selectors {
            result.append(load(selector, into: .slot(slot)))
            slot += NftRegister.slots(forBytes: selector.dataType.size)
        }
        return result
    }

    // MARK: - Other expressions

    private func bitwise(_ register: NftRegister, length: Int, mask: [UInt8], xor: [UInt8]) -> NftExpression {
        .bitwise(source: register, destination: register, length: UInt32(length), mask: mask, xor: xor)
    }

    /// `meta mark set meta mark & mask ^ xor`
    private func markUpdate(mask: UInt32, xor: UInt32) -> [NftExpression] {
        let reg1 = NftRegister.slot(0)
        return [.metaLoad(key: .mark, destination: reg1),
                bitwise(reg1, length: 4, mask: Value.integer(mask).bytes, xor: Value.integer(xor).bytes),
                .metaSet(key: .mark, source: reg1)]
    }

    private func lookup(_ set: String, destination: NftRegister?) -> NftExpression {
        .lookup(source: .slot(0), destination: destination, set: set, setID: setIDs[set], flags: 0)
    }
}
