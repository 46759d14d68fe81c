import CNetfilter

extension NftSetElement {
    /// Reads the one element of an element lookup's reply (`NFT_MSG_NEWSETELEM` answering
    /// a GETSETELEM) straight from its attributes, without libnftnl: lookups come one
    /// element per message, hundreds of thousands of them, and libnftnl's parse allocates
    /// a set, an element, an iterator and its expressions for each.
    ///
    /// - Returns: nil when the message does not hold exactly one element with a key, or
    ///   holds something this reader does not know (an expression other than a counter,
    ///   a key end): the caller then parses it with libnftnl.
    static func lookupReply(_ message: NetlinkMessageView) -> NftSetElement? {
        var result: NftSetElement?
        var count = 0
        var understood = true
        message.forEachAttribute { attribute in
            guard attribute.type == UInt16(NFTA_SET_ELEM_LIST_ELEMENTS.rawValue) else { return }
            attribute.forEachNested { item in
                count += 1
                guard item.type == UInt16(NFTA_LIST_ELEM.rawValue) else { understood = false; return }
                result = element(item, understood: &understood)
            }
        }
        return understood && count == 1 ? result : nil
    }

    /// Reads every element of a dumped element message (`NFT_MSG_NEWSETELEM` answering a
    /// dump) the same way: a scrape dumps 200,000 counted elements, and libnftnl's parse
    /// allocated more for them than the kernel spent on the dump.
    ///
    /// - Returns: nil when the message holds something this reader does not know: the
    ///   caller then parses it with libnftnl.
    static func dumpReply(_ message: NetlinkMessageView) -> [NftSetElement]? {
        var elements: [NftSetElement] = []
        var understood = true
        message.forEachAttribute { attribute in
            guard understood, attribute.type == UInt16(NFTA_SET_ELEM_LIST_ELEMENTS.rawValue) else { return }
            attribute.forEachNested { item in
                guard understood else { return }
                guard item.type == UInt16(NFTA_LIST_ELEM.rawValue) else { understood = false; return }
                if let element = element(item, understood: &understood) { elements.append(element) }
            }
        }
        return understood ? elements : nil
    }

    private static func element(_ item: NetlinkAttribute, understood: inout Bool) -> NftSetElement? {
        var key: [UInt8]?
        var element = NftSetElement(key: [])
        var ok = true
        item.forEachNested { attribute in
            switch Int(attribute.type) {
            case Int(NFTA_SET_ELEM_KEY.rawValue):
                attribute.forEachNested { if $0.type == UInt16(NFTA_DATA_VALUE.rawValue) { key = $0.bytes } }
            case Int(NFTA_SET_ELEM_DATA.rawValue):
                attribute.forEachNested { data in
                    if data.type == UInt16(NFTA_DATA_VALUE.rawValue) {
                        element.data = data.bytes
                    } else if data.type == UInt16(NFTA_DATA_VERDICT.rawValue) {
                        data.forEachNested { verdict in
                            if verdict.type == UInt16(NFTA_VERDICT_CODE.rawValue), let code = verdict.bigEndian32 {
                                element.verdict = Int32(bitPattern: code)
                            } else if verdict.type == UInt16(NFTA_VERDICT_CHAIN.rawValue) {
                                element.chain = verdict.string
                            }
                        }
                    }
                }
            case Int(NFTA_SET_ELEM_FLAGS.rawValue):
                break
            case Int(NFTA_SET_ELEM_USERDATA.rawValue):
                element.userData = attribute.bytes
            case Int(NFTA_SET_ELEM_TIMEOUT.rawValue):
                element.timeout = attribute.bigEndian64
            case Int(NFTA_SET_ELEM_EXPIRATION.rawValue):
                element.expiration = attribute.bigEndian64
            case Int(NFTA_SET_ELEM_EXPR.rawValue):
                if let counter = counter(attribute) { element.expressions.append(counter) } else { ok = false }
            case Int(NFTA_SET_ELEM_EXPRESSIONS.rawValue):
                attribute.forEachNested { listed in
                    if listed.type == UInt16(NFTA_LIST_ELEM.rawValue), let counter = counter(listed) {
                        element.expressions.append(counter)
                    } else {
                        ok = false
                    }
                }
            default:
                ok = false
            }
        }
        guard ok, let key else { understood = false; return nil }
        element.key = key
        return element
    }

    /// A `counter` expression (`NFTA_EXPR_NAME` "counter", its packets and bytes), or nil.
    private static func counter(_ expression: NetlinkAttribute) -> NftExpression? {
        var name: String?
        var packets: UInt64?
        var bytes: UInt64?
        expression.forEachNested { attribute in
            if attribute.type == UInt16(NFTA_EXPR_NAME.rawValue) {
                name = attribute.string
            } else if attribute.type == UInt16(NFTA_EXPR_DATA.rawValue) {
                attribute.forEachNested { field in
                    if field.type == UInt16(NFTA_COUNTER_PACKETS.rawValue) { packets = field.bigEndian64 }
                    if field.type == UInt16(NFTA_COUNTER_BYTES.rawValue) { bytes = field.bigEndian64 }
                }
            }
        }
        guard name == "counter", let packets, let bytes else { return nil }
        return .counter(packets: packets, bytes: bytes)
    }
}

extension NetlinkAttribute {
    /// A 64-bit payload in network byte order, or nil when it is shorter.
    var bigEndian64: UInt64? {
        payload.count >= 8 ? UInt64(bigEndian: payload.loadUnaligned(as: UInt64.self)) : nil
    }
}
