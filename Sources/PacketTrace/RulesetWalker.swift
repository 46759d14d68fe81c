import Nftables
import ServiceModel

/// What became of a packet at the end of its path through the ruleset.
public enum PacketFate: Hashable, Sendable {
    /// Accepted, and addressed to this node after any DNAT: delivered locally.
    case deliveredLocally
    /// Accepted, and routed on (to a pod or another host).
    case forwarded
    /// Sent by the node itself and accepted on its way out.
    case sent
    /// Refused with an answer (TCP reset or ICMP port unreachable).
    case rejected(RejectKind)
    /// Dropped silently.
    case dropped
}

/// What a rule that matched did to the packet.
public enum TraceEvent: Hashable, Sendable {
    /// Every condition held and the rule only passed control on (jump, goto, return, accept).
    case matched
    /// A verdict map held the key: control went where the element says.
    case dispatched(map: String, key: [Value], verdict: Verdict)
    /// A set held the key (a lookup condition of the rule).
    case found(set: String, key: [Value])
    /// Mark bits were set (`meta mark set meta mark | bits`).
    case markSet(bits: UInt32)
    /// Mark bits were flipped (`meta mark set meta mark ^ bits`).
    case markToggled(bits: UInt32)
    /// DNAT through a map: the key found and the address and port the packet now goes to.
    case translated(map: String, key: [Value], address: IPAddress, port: UInt16)
    /// The key was added to a dynamic set, or its timeout refreshed (`update @set`).
    case updatedSet(set: String, key: [Value])
    /// The key was removed from a dynamic map (`delete @map`).
    case deletedFromSet(set: String, key: [Value])
    /// The source address was rewritten to one of the node's (masquerade).
    case masqueraded
    /// The packet was refused.
    case rejected(RejectKind)
    /// The packet was dropped.
    case dropped
}

/// One rule that matched, in the order the packet met them.
public struct TraceStep: Hashable, Sendable {
    /// The netfilter hook the rule's base chain is attached to.
    public var hook: BaseChain.Hook
    /// The chain holding the rule.
    public var chain: String
    /// The rule's position in its chain, from 0.
    public var ruleIndex: Int
    /// The rule as nft writes it.
    public var rule: String
    /// What the rule did; a rule can do several things (a lookup, then a verdict).
    public var events: [TraceEvent]
}

/// One way a packet can go: the ruleset's random choices (numgen) make several.
public struct PacketPath: Hashable, Sendable {
    /// How likely this path is: the product of the random choices on it.
    public var probability: Double
    /// The packet as it leaves the ruleset, after DNAT.
    public var packet: Packet
    /// Whether its source was masqueraded on the way out.
    public var masqueraded: Bool
    /// What became of it.
    public var fate: PacketFate
    /// The rules that matched, in order.
    public var steps: [TraceStep]
    /// The random choices of this path (`numgen` results), in the order they were drawn.
    public var choices: [Int]
}

/// Follows one packet through the tables of a `Ruleset` as the kernel would evaluate them:
/// base chains by hook and priority, jumps, gotos and returns, set and map lookups, marks,
/// DNAT, masquerading and rejects. `numgen random` is not drawn but enumerated, so the
/// result is every path the packet can take, with its probability.
///
/// It models the first packet of a new connection (`ct state new`), the one NAT is decided
/// for; the kernel applies the same translation to the rest of the connection.
public struct RulesetWalker: Sendable {
    /// A table of one family, indexed for lookups.
    struct IndexedTable: Sendable {
        var table: Table
        var chains: [String: Chain]
        var sets: [String: [[Value]: ElementData?]]
        /// The elements of interval sets, matched by range.
        var intervals: [String: [SetElement]]

        /// Whether the set named `name` holds `key` (in one of its ranges, for an interval set).
        func holds(_ name: String, _ key: [Value]) -> Bool {
            if let ranges = intervals[name] { return ranges.contains { $0.contains(key) } }
            return sets[name]?[key] != nil
        }

        init(_ table: Table) {
            self.table = table
            chains = Dictionary(table.chains.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
            var sets: [String: [[Value]: ElementData?]] = [:]
            for set in table.sets {
                var elements: [[Value]: ElementData?] = [:]
                elements.reserveCapacity(set.elements.count)
                for element in set.elements { elements[element.key] = element.data }
                sets[set.name] = elements
            }
            self.sets = sets
            intervals = Dictionary(table.sets.filter { $0.flags.contains(.interval) }.map { ($0.name, $0.elements) },
                                   uniquingKeysWith: { first, _ in first })
        }

        /// Base chains of `hook`, in declaration order.
        func baseChains(_ hook: BaseChain.Hook) -> [Chain] {
            table.chains.filter { $0.base?.hook == hook }
        }
    }

    /// The ruleset's tables, indexed, by family.
    let tables: [TableFamily: [IndexedTable]]
    /// The node's own addresses (for `fib daddr type local`).
    public let node: NodeFacts

    /// A walker over every table of `ruleset`.
    public init(ruleset: Ruleset, node: NodeFacts) {
        var tables: [TableFamily: [IndexedTable]] = [:]
        for table in ruleset.tables { tables[table.family, default: []].append(IndexedTable(table)) }
        self.tables = tables
        self.node = node
    }

    /// Every path `packet` can take when it enters at `origin`, most likely first (ties in
    /// the order of the random choices).
    public func paths(of packet: Packet, from origin: PacketOrigin) -> [PacketPath] {
        var paths: [PacketPath] = []
        var pending: [[Int]] = [[]]
        // Each walk either finishes or asks for one more random choice: walk again with each.
        while let choices = pending.popLast() {
            var walk = Walk(walker: self, packet: packet, choices: choices)
            switch walk.run(from: origin) {
            case .finished(let fate):
                let probability = walk.moduli.reduce(1.0) { $0 / Double($1) }
                paths.append(PacketPath(probability: probability, packet: walk.packet, masqueraded: walk.masqueraded,
                                        fate: fate, steps: walk.steps, choices: choices))
            case .needsChoice(let modulus):
                pending += (0..<Int(modulus)).reversed().map { choices + [$0] }
            }
        }
        return paths.sorted { first, second in
            first.probability != second.probability ? first.probability > second.probability
                : first.choices.lexicographicallyPrecedes(second.choices)
        }
    }
}

/// One walk of one packet with fixed random choices.
private struct Walk {
    enum Outcome { case finished(PacketFate), needsChoice(UInt32) }

    /// A random choice not given in `choices`: the walk stops and is repeated with one.
    struct ChoiceNeeded: Error { var modulus: UInt32 }

    /// How a rule or chain ended.
    enum Control {
        /// Go on with the next rule (the rule did not match, or matched without a verdict).
        case next
        /// Leave the chain: back to the caller, or the base chain's policy.
        case `return`
        /// Evaluation of this hook ends here for the packet.
        case accept
        case drop
        case reject(RejectKind)
    }

    let walker: RulesetWalker
    var packet: Packet
    /// The packet as it arrived: conntrack's original tuple.
    let original: Packet
    let choices: [Int]
    var moduli: [UInt32] = []
    var mark: UInt32 = 0
    var destinationTranslated = false
    var masqueraded = false
    var steps: [TraceStep] = []
    var hook: BaseChain.Hook = .prerouting
    var table: RulesetWalker.IndexedTable?

    init(walker: RulesetWalker, packet: Packet, choices: [Int]) {
        self.walker = walker; self.packet = packet; self.original = packet; self.choices = choices
    }

    private var family: TableFamily { packet.family == .v4 ? .ip : .ip6 }

    mutating func run(from origin: PacketOrigin) -> Outcome {
        do {
            let hooks: [BaseChain.Hook] = origin == .node ? [.output] : [.prerouting]
            if let fate = try traverse(hooks) { return .finished(fate) }
            switch origin {
            case .node:
                if let fate = try traverse([.postrouting]) { return .finished(fate) }
                return .finished(.sent)
            case .pod, .outside:
                if walker.node.isLocal(packet.destination) {
                    if let fate = try traverse([.input]) { return .finished(fate) }
                    return .finished(.deliveredLocally)
                }
                if let fate = try traverse([.forward, .postrouting]) { return .finished(fate) }
                return .finished(.forwarded)
            }
        } catch {
            return .needsChoice(error.modulus)
        }
    }

    /// Runs the base chains of each hook; a fate when the packet was stopped.
    private mutating func traverse(_ hooks: [BaseChain.Hook]) throws(ChoiceNeeded) -> PacketFate? {
        for hook in hooks {
            self.hook = hook
            // The base chains of every table on this hook, by priority (ties: table order).
            let ordered = (walker.tables[family] ?? []).flatMap { table in table.baseChains(hook).map { (table, $0) } }
                .enumerated()
                .sorted { ($0.element.1.base?.priority ?? 0, $0.offset) < ($1.element.1.base?.priority ?? 0, $1.offset) }
                .map(\.element)
            for (table, chain) in ordered {
                self.table = table
                switch try run(chain, depth: 0) {
                case .drop: return .dropped
                case .reject(let kind): return .rejected(kind)
                case .next, .return, .accept: continue
                }
            }
        }
        return nil
    }

    /// Evaluates `chain`; `.return` when control falls off its end.
    private mutating func run(_ chain: Chain, depth: Int) throws(ChoiceNeeded) -> Control {
        // The kernel refuses loops and limits jump depth; a read-back ruleset could still be odd.
        guard depth < 64 else { return .return }
        for (index, rule) in chain.rules.enumerated() {
            let control = try evaluate(rule, index: index, in: chain, depth: depth)
            switch control {
            case .next: continue
            case .return, .accept, .drop, .reject: return control
            }
        }
        return .return
    }

    /// Evaluates one rule's statements left to right.
    private mutating func evaluate(_ rule: Rule, index: Int, in chain: Chain, depth: Int) throws(ChoiceNeeded) -> Control {
        var events: [TraceEvent] = []
        func record(_ events: [TraceEvent]) -> TraceStep {
            TraceStep(hook: hook, chain: chain.name, ruleIndex: index, rule: ScriptRenderer().render(rule),
                      events: events.isEmpty ? [.matched] : events)
        }
        for statement in rule.statements {
            switch statement {
            case .compare(let selector, let negated, let value):
                guard try select(selector).map({ ($0 == value) != negated }) ?? false else { return .next }
            case .prefix(let selector, let network, let length, let negated):
                guard case .address(let address)? = try select(selector),
                      address.family == network.family else { return .next }
                let inside = CIDR(address: network, prefixLength: length).contains(address)
                guard inside != negated else { return .next }
            case .bitTest(let selector, let mask, let isSet):
                guard case .integer(let bits)? = try select(selector), (bits & mask != 0) == isSet else { return .next }
            case .lookup(let selectors, let set):
                guard let key = try key(selectors), table?.holds(set, key) == true else { return .next }
                events.append(.found(set: set, key: key))
            case .verdictMap(let selectors, let map):
                guard let key = try key(selectors), case .verdict(let verdict)?? = table?.sets[map]?[key] else {
                    return .next
                }
                events.append(.dispatched(map: map, key: key, verdict: verdict))
                steps.append(record(events))
                return try follow(verdict, depth: depth)
            case .setMarkBits(let bits):
                mark |= bits
                events.append(.markSet(bits: bits))
            case .toggleMarkBits(let bits):
                mark ^= bits
                events.append(.markToggled(bits: bits))
            case .verdict(let verdict):
                steps.append(record(events))
                return try follow(verdict, depth: depth)
            case .dnatMap(let selectors, let map, _):
                guard let key = try key(selectors), case .values(let values)?? = table?.sets[map]?[key],
                      values.count == 2, case .address(let address) = values[0], case .port(let port) = values[1] else {
                    return .next
                }
                packet.destination = address
                packet.destinationPort = port
                destinationTranslated = true
                events.append(.translated(map: map, key: key, address: address, port: port))
                steps.append(record(events))
                return .accept
            case .masquerade:
                masqueraded = true
                events.append(.masqueraded)
                steps.append(record(events))
                return .accept
            case .reject(let kind):
                events.append(.rejected(kind))
                steps.append(record(events))
                return .reject(kind)
            case .counter:
                continue
            case .updateSet(let selectors, let set, _):
                guard let key = try key(selectors) else { return .next }
                // The element is there for the rest of this packet's path (and the flow's).
                table?.sets[set, default: [:]][key] = .some(nil)
                events.append(.updatedSet(set: set, key: key))
            case .updateMap(let selectors, let data, let map, _):
                guard let key = try key(selectors), let values = try self.key(data) else { return .next }
                // An element that is there keeps its data; its timeout is refreshed.
                if table?.sets[map]?[key] == nil { table?.sets[map, default: [:]][key] = .some(.values(values)) }
                events.append(.updatedSet(set: map, key: key))
            case .deleteFromMap(let selectors, _, let map):
                guard let key = try key(selectors) else { return .next }
                table?.sets[map]?[key] = nil
                events.append(.deletedFromSet(set: map, key: key))
            }
        }
        if !events.isEmpty { steps.append(record(events)) }
        return .next
    }

    /// Carries out a verdict met at `depth`.
    private mutating func follow(_ verdict: Verdict, depth: Int) throws(ChoiceNeeded) -> Control {
        switch verdict {
        case .accept: return .accept
        case .drop:
            steps[steps.count - 1].events.append(.dropped)
            return .drop
        case .return: return .return
        case .jump(let name):
            guard let target = table?.chains[name] else { return .next }
            let control = try run(target, depth: depth + 1)
            // Falling off the end of a jumped-to chain continues after the jump.
            return control == .return ? .next : control
        case .goto(let name):
            guard let target = table?.chains[name] else { return .next }
            // A goto does not come back: the target's return is this chain's return.
            return try run(target, depth: depth + 1)
        }
    }

    private mutating func key(_ selectors: [Selector]) throws(ChoiceNeeded) -> [Value]? {
        var key: [Value] = []
        for selector in selectors {
            guard let value = try select(selector) else { return nil }
            key.append(value)
        }
        return key
    }

    /// The value a selector loads for this packet; nil when it loads nothing (a field of
    /// another family).
    private mutating func select(_ selector: Selector) throws(ChoiceNeeded) -> Value? {
        switch selector {
        case .address(let field, let tableFamily):
            guard tableFamily == family else { return nil }
            return .address(field == .source ? packet.source : packet.destination)
        case .transportDestinationPort:
            return .port(packet.destinationPort)
        case .l4proto:
            return .proto(packet.transport.number)
        case .mark:
            return .integer(mark)
        case .randomNumber(let modulus):
            let drawn = moduli.count
            moduli.append(modulus)
            guard drawn < choices.count else { throw ChoiceNeeded(modulus: modulus) }
            return .integer(UInt32(choices[drawn]))
        case .fibDestinationType:
            return .integer(walker.node.isLocal(packet.destination) ? KernelValues.routeLocal : KernelValues.routeUnicast)
        case .fibSourceType:
            return .integer(walker.node.isLocal(packet.source) ? KernelValues.routeLocal : KernelValues.routeUnicast)
        case .ctState:
            return .integer(KernelValues.ctStateNew)
        case .ctStatus:
            return .integer(destinationTranslated ? KernelValues.ctStatusDestinationNAT : 0)
        case .ctAddress(let field, let direction, let tableFamily):
            guard tableFamily == family else { return nil }
            // The reply tuple runs from where the packet now goes (the endpoint, after DNAT)
            // back to its source (the walker does not model the masquerade address).
            switch (direction, field) {
            case (.original, .source), (.reply, .destination): return .address(original.source)
            case (.original, .destination): return .address(original.destination)
            case (.reply, .source): return .address(packet.destination)
            }
        case .ctPort(let field, let direction):
            // Only destination ports are modelled: a source port loads nothing.
            switch (direction, field) {
            case (.original, .destination): return .port(original.destinationPort)
            case (.reply, .source): return .port(packet.destinationPort)
            case (.original, .source), (.reply, .destination): return nil
            }
        }
    }
}

extension Walk.Control: Equatable {}

/// Kernel values the walker produces for the packet it models.
enum KernelValues {
    /// `fib daddr type local` (RTN_LOCAL) and a plain unicast route (RTN_UNICAST).
    static let routeLocal: UInt32 = 2
    static let routeUnicast: UInt32 = 1
    /// `ct state new`: the bit of IP_CT_NEW.
    static let ctStateNew: UInt32 = 1 << 3
    /// `ct status dnat`: IPS_DST_NAT.
    static let ctStatusDestinationNAT: UInt32 = 1 << 5
}
