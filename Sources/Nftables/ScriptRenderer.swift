import ServiceModel

/// Renders a `Ruleset` as an nft script that `nft -f` loads unchanged.
///
/// Each table is replaced as a whole: the script first makes sure the table exists,
/// deletes it and declares it anew, all in the one transaction `nft -f` makes of a file.
public struct ScriptRenderer: Sendable {
    public init() {}

    public func render(_ ruleset: Ruleset) -> String {
        var out = ""
        for table in ruleset.tables {
            out += "add table \(table.qualifiedName)\n"
            out += "delete table \(table.qualifiedName)\n"
        }
        for table in ruleset.tables {
            out += render(table)
        }
        return out
    }

    /// Renders one table declaration (sets and maps first, then chains).
    public func render(_ table: Table) -> String {
        var out = "table \(table.qualifiedName) {\n"
        for set in table.sets {
            out += render(set)
            out += "\n"
        }
        for (index, chain) in table.chains.enumerated() {
            out += render(chain)
            if index < table.chains.count - 1 { out += "\n" }
        }
        out += "}\n"
        return out
    }

    public func render(_ set: NamedSet) -> String {
        var out = "\t\(set.isMap ? "map" : "set") \(set.name) {\n"
        out += "\t\t\(declaration(of: set))\n"
        if let size = set.size { out += "\t\tsize \(size)\n" }
        let flags = SetFlags.names.filter { set.flags.contains($0.0) }.map(\.1)
        if !flags.isEmpty { out += "\t\tflags \(flags.joined(separator: ","))\n" }
        if let timeout = set.timeout { out += "\t\ttimeout \(NftDuration.text(milliseconds: timeout))\n" }
        if set.counter { out += "\t\tcounter\n" }
        if !set.elements.isEmpty {
            out += "\t\telements = { "
            out += set.elements.map(render).joined(separator: ",\n\t\t\t     ")
            out += " }\n"
        }
        out += "\t}\n"
        return out
    }

    /// `type a . b : c` or `typeof x . y : z`
    public func declaration(of set: NamedSet) -> String {
        func fields(_ fields: SetFields) -> (keyword: String, text: String) {
            switch fields {
            case .types(let types): return ("type", types.map(\.nftName).joined(separator: " . "))
            case .typeOf(let selectors): return ("typeof", selectors.map(\.nftText).joined(separator: " . "))
            }
        }
        let key = fields(set.key)
        switch set.data {
        case nil:
            return "\(key.keyword) \(key.text)"
        case .verdict:
            return "\(key.keyword) \(key.text) : verdict"
        case .fields(let dataFields):
            let data = fields(dataFields)
            // nft takes one keyword for both sides; a typeof key with typed data is not expressible.
            return "\(key.keyword) \(key.text) : \(data.text)"
        }
    }

    public func render(_ element: SetElement) -> String {
        var text = element.key.map(render).joined(separator: " . ")
        if let keyEnd = element.keyEnd, keyEnd.count == element.key.count {
            // A range per field: the value, a prefix (`10.0.0.0/8`) or `first-last`.
            text = zip(element.key, keyEnd).map { first, last in
                guard first != last else { return render(first) }
                if case .address(let start) = first, case .address(let end) = last, let cidr = CIDR(first: start, last: end) {
                    return cidr.description
                }
                return render(first) + "-" + render(last)
            }.joined(separator: " . ")
        }
        if let timeout = element.timeout { text += " timeout \(NftDuration.text(milliseconds: timeout))" }
        if let comment = element.comment { text += " comment \"\(comment)\"" }
        switch element.data {
        case nil: break
        case .verdict(let verdict): text += " : " + render(verdict)
        case .values(let values): text += " : " + values.map(render).joined(separator: " . ")
        }
        return text
    }

    public func render(_ chain: Chain) -> String {
        var out = "\tchain \(chain.name) {\n"
        if let base = chain.base {
            out += "\t\ttype \(base.type.rawValue) hook \(base.hook.rawValue) priority \(base.priority); policy accept;\n"
        }
        for rule in chain.rules {
            out += "\t\t\(render(rule))\n"
        }
        out += "\t}\n"
        return out
    }

    public func render(_ rule: Rule) -> String {
        rule.statements.map(render).joined(separator: " ")
    }

    public func render(_ statement: Statement) -> String {
        switch statement {
        case .compare(let selector, let negated, let value):
            return "\(selector.nftText) \(negated ? "!= " : "")\(render(value, as: selector.dataType))"
        case .prefix(let selector, let network, let length, let negated):
            return "\(selector.nftText) \(negated ? "!= " : "")\(network)/\(length)"
        case .bitTest(let selector, let mask, let isSet):
            if isSet, let name = flagName(selector, mask) {
                return "\(selector.nftText) \(name)"
            }
            return "\(selector.nftText) & \(hex(mask)) \(isSet ? "!=" : "==") \(hex(0))"
        case .lookup(let selectors, let set):
            return "\(selectors.map(\.nftText).joined(separator: " . ")) @\(set)"
        case .verdictMap(let selectors, let map):
            return "\(selectors.map(\.nftText).joined(separator: " . ")) vmap @\(map)"
        case .setMarkBits(let bits):
            return "meta mark set meta mark | \(hex(bits))"
        case .toggleMarkBits(let bits):
            return "meta mark set meta mark ^ \(hex(bits))"
        case .verdict(let verdict):
            return render(verdict)
        case .dnatMap(let selectors, let map, let family):
            return "dnat \(family.rawValue) to \(selectors.map(\.nftText).joined(separator: " . ")) map @\(map)"
        case .masquerade(let fullyRandom):
            return fullyRandom ? "masquerade fully-random" : "masquerade"
        case .reject(.tcpReset):
            return "reject with tcp reset"
        case .reject(.portUnreachable):
            return "reject"
        case .counter:
            return "counter"
        case .updateSet(let selectors, let set, let timeout):
            let key = selectors.map(\.nftText).joined(separator: " . ")
            return "update @\(set) { \(key)\(timeout.map { " timeout \(NftDuration.text(milliseconds: $0))" } ?? "") }"
        case .updateMap(let selectors, let data, let map, let timeout):
            let key = selectors.map(\.nftText).joined(separator: " . ")
            let value = data.map(\.nftText).joined(separator: " . ")
            return "update @\(map) { \(key)\(timeout.map { " timeout \(NftDuration.text(milliseconds: $0))" } ?? "") : \(value) }"
        case .deleteFromMap(let selectors, let data, let map):
            let key = selectors.map(\.nftText).joined(separator: " . ")
            return "delete @\(map) { \(key) : \(data.map(\.nftText).joined(separator: " . ")) }"
        }
    }

    public func render(_ verdict: Verdict) -> String {
        switch verdict {
        case .accept: return "accept"
        case .drop: return "drop"
        case .return: return "return"
        case .jump(let chain): return "jump \(chain)"
        case .goto(let chain): return "goto \(chain)"
        }
    }

    /// A value as nft prints it for the given datatype.
    public func render(_ value: Value, as type: DataType? = nil) -> String {
        switch value {
        case .address(let address):
            return address.description
        case .proto(let number):
            return TransportProtocol.allCases.first { $0.number == number }?.rawValue ?? String(number)
        case .port(let port):
            return String(port)
        case .integer(let number):
            if type == .fibAddressType, let name = FibAddressType.names.first(where: { $0.0 == number })?.1 {
                return name
            }
            if type == .mark { return hex(number) }
            return String(number)
        }
    }

    private func render(_ value: Value) -> String { render(value, as: nil) }

    private func flagName(_ selector: Selector, _ mask: UInt32) -> String? {
        switch selector {
        case .ctState: return CtStateFlag.names.first { $0.0 == mask }?.1
        case .ctStatus: return CtStatusFlag.names.first { $0.0 == mask }?.1
        default: return nil
        }
    }

    private func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}

/// Durations as nft writes them: `3h`, `1h30m`, `30s`, `250ms`.
enum NftDuration {
    static func text(milliseconds: UInt64) -> String {
        guard milliseconds > 0 else { return "0s" }
        let units: [(UInt64, String)] = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s"), (1, "ms")]
        var rest = milliseconds
        var text = ""
        for (size, name) in units where rest >= size {
            text += "\(rest / size)\(name)"
            rest %= size
        }
        return text
    }
}
