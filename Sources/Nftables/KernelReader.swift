import Netlink

/// What the kernel holds in one table, read back into the IR.
public struct TableReadBack: Sendable {
    /// The table as the kernel holds it (sets with their elements, chains with their rules).
    public var table: Table
    /// Chains holding a rule nftproxy did not write (or cannot read): to be rewritten.
    public var untrustedChains: Set<String>
    /// Sets whose declaration nftproxy cannot read: the table must be replaced.
    public var unreadableSets: Set<String>
    /// Why each untrusted chain and unreadable set is so, in the order found.
    public var problems: [ReadBackProblem] = []
    /// How many element keys were looked up in the kernel to read the derived maps and pair sets.
    public var keysLookedUp = 0
    /// With a trusted read-back (``ReadBackTrust``): how many frontends' derived elements were
    /// taken from the desired table instead of being read; nil when the read-back read them all.
    public var trustedFrontends: Int?
}

/// What a read-back may take on trust (docs/ruleset.md, "Trusted read-back"): when the table's
/// generation stamp equals the generation it is read at, the derived maps' elements of every
/// frontend whose digest in the kernel equals its digest in `desired` (``TrustedReadBack``).
public struct ReadBackTrust: Sendable {
    /// The table the caller is about to sync to (compiled, with its digest sets).
    public var desired: Table
    /// The nf_tables generation the caller read before reading the table.
    public var generation: UInt32

    public init(desired: Table, generation: UInt32) {
        self.desired = desired
        self.generation = generation
    }
}

/// Something in a table that the read-back could not turn into the IR, and why.
public enum ReadBackProblem: Hashable, Sendable, CustomStringConvertible {
    /// Rule `index` (from 0) of `chain` is not one nftproxy writes.
    case unrecognizedRule(chain: String, index: Int, reason: String)
    /// The declaration of `set` is not one nftproxy writes.
    case unreadableSet(set: String, reason: String)

    public var description: String {
        switch self {
        case let .unrecognizedRule(chain, index, reason):
            return "rule \(index) of chain \(chain) is not one nftproxy writes: \(reason)"
        case let .unreadableSet(set, reason):
            return "set \(set) is not declared as nftproxy declares it: \(reason)"
        }
    }
}

/// Reads tables back from the kernel over netlink (no `nft` involved).
///
/// Set declarations, chains and rules are dumped; so are the elements of every set whose
/// keys do not follow from the rest of the table. The elements of maps whose keys do
/// (``DerivedKeys``: nftproxy's backends maps, which hold nearly all elements) are looked
/// up by key instead, because dumping a large set costs quadratic time in the kernel
/// (docs/kernel.md). Both give the same elements with the same counters, except for keys
/// of a derived map that no packet can reach, which only a dump finds
/// (``ElementReading/dumpEverySet``).
public struct KernelReader {
    /// How the elements of sets are read.
    public enum ElementReading: Sendable, Hashable {
        /// Maps with derivable keys are looked up by key (linear), the other sets dumped;
        /// every set is dumped when anything in the table is not understood.
        case lookUpDerivedKeys
        /// Every set's elements are dumped: also finds elements no packet can reach.
        case dumpEverySet
    }

    let socket: NetlinkSocket
    /// How elements are read; ``ElementReading/lookUpDerivedKeys`` unless told otherwise.
    public let elementReading: ElementReading
    /// Whether the elements of counted pair sets (``DerivedKeys/countedPairSets``: what the
    /// packet path counted) are read. A sync does not need them (it retires elements by the
    /// changes of the maps their pairs come from), and dumping them is quadratic in their
    /// number; `nftproxy stats` and the metrics do. A dump of every set reads them anyway.
    public let readsCounts: Bool

    public init(socket: NetlinkSocket, elements: ElementReading = .lookUpDerivedKeys, readsCounts: Bool = true) {
        self.socket = socket
        elementReading = elements
        self.readsCounts = readsCounts
    }

    /// Reads one table; nil when the kernel has no such table.
    ///
    /// - Parameter trust: what the read-back may take from the desired table instead of
    ///   reading it, if the table's stamp allows (ignored with ``ElementReading/dumpEverySet``).
    public func read(_ family: TableFamily, _ name: String,
                     trusting trust: ReadBackTrust? = nil) throws(NetlinkError) -> TableReadBack? {
        let protocolFamily = family.protocolFamily
        guard try socket.tables(family: protocolFamily).contains(where: { $0.name == name }) else { return nil }
        var problems: [ReadBackProblem] = []
        var unreadable = Set<String>()
        var declarations: [NamedSet] = []
        let decoder = SetDecoder(family: family)
        for wire in try socket.sets(family: protocolFamily, table: name) {
            do throws(RuleDecoder.Unrecognized) {
                declarations.append(try decoder.declaration(of: wire))
            } catch {
                unreadable.insert(wire.name)
                problems.append(.unreadableSet(set: wire.name, reason: error.reason))
            }
        }

        var chains = try socket.chains(family: protocolFamily, table: name).map(Self.chain)
        var rules: [String: [Rule]] = [:]
        var untrusted = Set<String>()
        var positions: [String: Int] = [:]
        let ruleDecoder = RuleDecoder(family: family)
        for wire in try socket.rules(family: protocolFamily, table: name) {
            let index = positions[wire.chain, default: 0]
            positions[wire.chain] = index + 1
            do throws(RuleDecoder.Unrecognized) {
                // Comments (rule userdata) are not ours.
                if wire.userData != nil { throw RuleDecoder.Unrecognized(reason: "the rule has a comment (userdata)") }
                rules[wire.chain, default: []].append(try ruleDecoder.decode(wire.expressions))
            } catch {
                untrusted.insert(wire.chain)
                problems.append(.unrecognizedRule(chain: wire.chain, index: index, reason: error.reason))
            }
        }
        for index in chains.indices {
            chains[index].rules = rules[chains[index].name] ?? []
        }

        var table = Table(family: family, name: name, sets: declarations, chains: chains)
        // Keys follow from the rules only when every rule and set is understood.
        let derived = elementReading == .lookUpDerivedKeys && problems.isEmpty ? DerivedKeys(table) : nil
        let lookedUp = derived?.maps ?? []
        let pairSets = derived?.connectionPairSets ?? []
        let skipped = readsCounts ? [] : derived?.countedPairSets ?? []
        for index in table.sets.indices where !lookedUp.contains(table.sets[index].name)
            && !pairSets.contains(table.sets[index].name) && !skipped.contains(table.sets[index].name) {
            try dumpElements(of: &table.sets[index], table: table)
        }
        // The stamp and the digest sets are read by now.
        let trusted = derived.flatMap { derived in
            trust.flatMap { TrustedReadBack(kernel: table, derived: derived, desired: $0.desired, generation: $0.generation) }
        }
        var keysLookedUp = 0
        let kernelTable = table
        for index in table.sets.indices where lookedUp.contains(table.sets[index].name) {
            let name = table.sets[index].name
            let keys: [[Value]]?
            if let trusted, let derived {
                keys = trusted.keysToLookUp(of: name, in: kernelTable, derived: derived)
            } else {
                keys = derived?.keys(of: name, in: table)
            }
            if let keys {
                try lookUpElements(keys, of: &table.sets[index], table: table)
                keysLookedUp += keys.count
                if let trusted { table.sets[index].elements = trusted.elements(of: name, lookedUp: table.sets[index].elements) }
            } else {
                try dumpElements(of: &table.sets[index], table: table)
            }
        }
        // Their keys follow from the derived maps' elements, read just above.
        for index in table.sets.indices where pairSets.contains(table.sets[index].name) {
            if let keys = derived?.pairKeys(of: table.sets[index].name, in: table) {
                try lookUpElements(keys, of: &table.sets[index], table: table)
                keysLookedUp += keys.count
            } else {
                try dumpElements(of: &table.sets[index], table: table)
            }
        }
        return TableReadBack(table: table, untrustedChains: untrusted, unreadableSets: unreadable, problems: problems,
                             keysLookedUp: keysLookedUp, trustedFrontends: trusted?.trustedFrontends.count)
    }

    /// Reads every element of `set` with a dump.
    private func dumpElements(of set: inout NamedSet, table: Table) throws(NetlinkError) {
        let decoder = SetDecoder(family: table.family)
        let declaration = set
        var elements: [SetElement] = []
        try socket.forEachElement(family: table.family.protocolFamily, table: table.name, set: set.name) { element in
            guard let decoded = decoder.element(element, of: declaration) else { throw Self.unreadableElement(declaration, table) }
            elements.append(decoded)
        }
        set.elements = elements
    }

    /// Reads the elements of `set` that have the given keys; keys the set does not hold are left out.
    private func lookUpElements(_ keys: [[Value]], of set: inout NamedSet, table: Table) throws(NetlinkError) {
        let decoder = SetDecoder(family: table.family)
        let declaration = set
        var found: [SetElement?] = Array(repeating: nil, count: keys.count)
        _ = try socket.lookUpElements(family: table.family.protocolFamily, table: table.name, set: set.name,
                                      keys: keys.map(SetLayout.bytes(of:))) { index, element in
            guard let decoded = decoder.element(element, of: declaration) else { throw Self.unreadableElement(declaration, table) }
            found[index] = decoded
        }
        set.elements = found.compactMap { $0 }
    }

    private static func unreadableElement(_ set: NamedSet, _ table: Table) -> NetlinkError {
        .malformed("set \(set.name) of table \(table.qualifiedName) holds elements nftproxy cannot read")
    }

    /// The IR of a dumped chain.
    static func chain(_ wire: NftChain) -> Chain {
        guard let hookNumber = wire.hook else { return Chain(name: wire.name) }
        if let hook = BaseChain.Hook.allCases.first(where: { $0.number == hookNumber }),
           let type = wire.type.flatMap(BaseChain.ChainType.init(rawValue:)),
           wire.policy == UInt32(VerdictCode.accept), let priority = wire.priority {
            return Chain(name: wire.name, base: BaseChain(type: type, hook: hook, priority: priority))
        }
        // A hook we never write: make it differ from anything desired.
        return Chain(name: wire.name, base: BaseChain(type: .filter, hook: .prerouting, priority: Int32.min))
    }
}

extension SetLayout {
    /// Splits key or data bytes into values of the given types (the inverse of `bytes(of:)`).
    static func values(_ bytes: [UInt8], _ types: [DataType]) -> [Value]? {
        if types.count == 1 { return Value.decode(bytes, as: types[0]).map { [$0] } }
        var values: [Value] = []
        values.reserveCapacity(types.count)
        var offset = 0
        for type in types {
            guard offset + type.size <= bytes.count,
                  let value = Value.decode(bytes[offset..<(offset + type.size)], as: type) else { return nil }
            values.append(value)
            offset += (type.size + 3) / 4 * 4
        }
        return offset == bytes.count ? values : nil
    }
}
