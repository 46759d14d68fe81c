/// The userdata nft stores with a set: byte orders and, for concatenations and `typeof`
/// declarations, the expressions that produce key and data (NFTNL_UDATA_SET_* TLVs).
///
/// Without it the kernel still works, but `nft list` cannot print the set as declared.
/// The layout below is what nft 1.0.x writes; `Tests/NftablesTests` pins it to bytes
/// captured from `nft --debug=mnl`.
enum SetUserData {
    // NFTNL_UDATA_SET_* attribute types.
    private static let keyByteOrder: UInt8 = 0
    private static let dataByteOrder: UInt8 = 1
    private static let keyTypeOf: UInt8 = 3
    private static let dataTypeOf: UInt8 = 4
    private static let dataInterval: UInt8 = 6

    // nft's `enum byteorder`.
    private static let byteOrderInvalid: UInt32 = 0
    private static let byteOrderHost: UInt32 = 1
    private static let byteOrderBig: UInt32 = 2

    // nft's `enum expr_types` for the expressions we describe.
    private static let exprPayload: UInt32 = 7
    private static let exprMeta: UInt32 = 9
    private static let exprConcat: UInt32 = 13
    private static let exprNumgen: UInt32 = 23

    static func encode(_ set: NamedSet) -> [UInt8] {
        var out: [UInt8] = []
        out += tlv(keyByteOrder, u32(byteOrder(set.key)))
        if let data = set.data {
            switch data {
            case .verdict: out += tlv(dataByteOrder, u32(byteOrderInvalid))
            case .fields(let fields): out += tlv(dataByteOrder, u32(byteOrder(fields)))
            }
        }
        if set.key.dataTypes.count > 1 {
            out += tlv(keyTypeOf, typeOfDescription(set.key))
        }
        if case .fields(let fields)? = set.data, fields.dataTypes.count > 1 {
            out += tlv(dataTypeOf, typeOfDescription(fields))
        }
        if set.isMap {
            out += tlv(dataInterval, u32(0))
        }
        return out
    }

    private static func byteOrder(_ fields: SetFields) -> UInt32 {
        let types = fields.dataTypes
        guard types.count == 1 else { return byteOrderInvalid }
        return types[0].isBigEndian ? byteOrderBig : byteOrderHost
    }

    /// A concatenation: its expression type, then (for `typeof`) each member expression.
    private static func typeOfDescription(_ fields: SetFields) -> [UInt8] {
        var members: [UInt8] = []
        if case .typeOf(let selectors) = fields {
            for (index, selector) in selectors.enumerated() {
                let (type, data) = describe(selector)
                members += tlv(UInt8(index), tlv(0, u32(type)) + tlv(1, data))
            }
        }
        return tlv(0, u32(exprConcat)) + tlv(1, members)
    }

    /// nft's `*_expr_build_udata` for one expression: (expression type, attributes).
    private static func describe(_ selector: Selector) -> (UInt32, [UInt8]) {
        switch selector {
        case .address(let field, let family):
            // Protocol description id (proto_ip 12, proto_ip6 13) and header field template.
            let description: UInt32 = family == .ip ? 12 : 13
            let template: UInt32
            switch (family, field) {
            case (.ip, .source): template = 11
            case (.ip, .destination): template = 12
            case (.ip6, .source): template = 8
            case (.ip6, .destination): template = 9
            }
            return (exprPayload, tlv(0, u32(description)) + tlv(1, u32(template)))
        case .transportDestinationPort:
            // proto_th, field dport.
            return (exprPayload, tlv(0, u32(11)) + tlv(1, u32(2)))
        case .l4proto:
            return (exprMeta, tlv(0, u32(16)))
        case .mark:
            return (exprMeta, tlv(0, u32(3)))
        case .randomNumber(let modulus):
            // type NFT_NG_RANDOM, modulus, offset 0.
            return (exprNumgen, tlv(0, u32(1)) + tlv(1, u32(modulus)) + tlv(2, u32(0)))
        case .fibDestinationType, .fibSourceType, .ctState, .ctStatus, .ctAddress, .ctPort:
            // Never used as a set key; nft would describe them with their own attributes.
            return (0, [])
        }
    }

    private static func tlv(_ type: UInt8, _ value: [UInt8]) -> [UInt8] {
        precondition(value.count <= 255, "userdata attribute too long")
        return [type, UInt8(value.count)] + value
    }

    private static func u32(_ value: UInt32) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }
}

extension SetUserData {
    /// Reads back the `typeof` expressions of key and data, when the userdata has them.
    static func decodeTypeOf(_ bytes: [UInt8], family: TableFamily) -> (key: [Selector]?, data: [Selector]?) {
        let attributes = parse(bytes)
        return (attributes[keyTypeOf].flatMap { concatenation($0, family: family) },
                attributes[dataTypeOf].flatMap { concatenation($0, family: family) })
    }

    /// Datatypes of a concatenated type id (6 bits per field, first field highest).
    static func dataTypes(ofTypeID typeID: UInt32) -> [DataType]? {
        var remaining = typeID
        var types: [DataType] = []
        while remaining != 0 {
            guard let type = DataType(typeID: remaining & 0x3f) else { return nil }
            types.insert(type, at: 0)
            remaining >>= 6
        }
        return types.isEmpty ? nil : types
    }

    private static func parse(_ bytes: [UInt8]) -> [UInt8: [UInt8]] {
        var result: [UInt8: [UInt8]] = [:]
        var index = 0
        while index + 2 <= bytes.count {
            let type = bytes[index], length = Int(bytes[index + 1])
            guard index + 2 + length <= bytes.count else { break }
            result[type] = Array(bytes[(index + 2)..<(index + 2 + length)])
            index += 2 + length
        }
        return result
    }

    private static func concatenation(_ bytes: [UInt8], family: TableFamily) -> [Selector]? {
        let outer = parse(bytes)
        guard outer[0].map(readU32) == exprConcat, let members = outer[1], !members.isEmpty else { return nil }
        var selectors: [Selector] = []
        var index: UInt8 = 0
        let memberAttributes = parse(members)
        while let member = memberAttributes[index] {
            let fields = parse(member)
            guard let type = fields[0].map(readU32), let data = fields[1].map(parse),
                  let selector = selector(type: type, data, family: family) else { return nil }
            selectors.append(selector)
            index += 1
        }
        return selectors
    }

    private static func selector(type: UInt32, _ data: [UInt8: [UInt8]], family: TableFamily) -> Selector? {
        for candidate in candidates(family) {
            let (candidateType, encoded) = describe(candidate)
            if candidateType == type, parse(encoded) == data { return candidate }
        }
        if type == exprNumgen, let modulus = data[1].map(readU32) {
            let numgen = Selector.randomNumber(modulus: modulus)
            return parse(describe(numgen).1) == data ? numgen : nil
        }
        return nil
    }

    private static func candidates(_ family: TableFamily) -> [Selector] {
        [.address(.source, family), .address(.destination, family), .transportDestinationPort, .l4proto, .mark]
    }

    private static func readU32(_ bytes: [UInt8]) -> UInt32 { RuleDecoder.u32(bytes) }
}
