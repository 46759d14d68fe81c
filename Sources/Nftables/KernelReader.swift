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
public struct KernelReader {
    let socket: NetlinkSocket

    public init(socket: NetlinkSocket) { self.socket = socket }

    /// Reads one table; nil when the kernel has no such table.
    public func read(_ family: TableFamily, _ name: String) throws(NetlinkError) -> TableReadBack? {
        let protocolFamily = family.protocolFamily
        guard try socket.tables(family: protocolFamily).contains(where: { $0.name == name }) else { return nil }
        var problems: [ReadBackProblem] = []
        var unreadable = Set<String>()
        var sets: [NamedSet] = []
        let decoder = SetDecoder(family: family)
        for wire in try socket.sets(family: protocolFamily, table: name) {
            let declaration: NamedSet
            do throws(RuleDecoder.Unrecognized) {
                declaration = try decoder.declaration(of: wire)
            } catch {
                unreadable.insert(wire.name)
                problems.append(.unreadableSet(set: wire.name, reason: error.reason))
                continue
            }
            var set = declaration
            try socket.forEachElement(family: protocolFamily, table: name, set: wire.name) { element in
                guard let decoded = decoder.element(element, of: declaration) else {
                    throw NetlinkError.malformed(
                        "set \(wire.name) of table \(family.rawValue) \(name) holds elements nftproxy cannot read")
                }
                set.elements.append(decoded)
            }
            sets.append(set)
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
        return TableReadBack(table: Table(family: family, name: name, sets: sets, chains: chains),
                             untrustedChains: untrusted, unreadableSets: unreadable, problems: problems)
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
