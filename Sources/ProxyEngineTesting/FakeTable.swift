#if canImport(Glibc)
import Glibc
#endif
import Nftables

/// One table of `FakeTables`: chains in creation order, sets with their elements indexed by key.
struct FakeTable: Sendable, Equatable {
    let family: TableFamily
    let name: String
    private var chains: [Chain] = []
    private var sets: [FakeSet] = []

    init(family: TableFamily, name: String) {
        self.family = family
        self.name = name
    }

    var table: Table {
        Table(family: family, name: name, sets: sets.map(\.namedSet), chains: chains)
    }

    /// Applies an operation on something inside the table; returns the errno of a refusal
    /// (then the table may be half changed: `FakeTables.apply` discards it).
    mutating func apply(_ operation: Operation) -> Int32? {
        switch operation {
        case .addTable, .deleteTable:
            return nil
        case .addChain(_, _, let chain):
            guard let index = chainIndex(chain.name) else {
                chains.append(Chain(name: chain.name, base: chain.base))
                return nil
            }
            return chains[index].base == chain.base ? nil : EEXIST
        case .flushChain(_, _, let chain):
            guard let index = chainIndex(chain) else { return ENOENT }
            chains[index].rules = []
            return nil
        case .deleteChain(_, _, let chain):
            guard let index = chainIndex(chain) else { return ENOENT }
            chains[index].rules = []
            guard !isChainReferenced(chain) else { return EBUSY }
            chains.remove(at: index)
            return nil
        case .addSet(_, _, let set):
            guard let index = setIndex(set.name) else {
                sets.append(FakeSet(declaration: set.withoutElements))
                return nil
            }
            return sets[index].declaration == set.withoutElements ? nil : EEXIST
        case .deleteSet(_, _, let set):
            guard let index = setIndex(set) else { return ENOENT }
            guard !chains.contains(where: { $0.rules.contains { $0.setNames.contains(set) } }) else { return EBUSY }
            sets.remove(at: index)
            return nil
        case .addElements(_, _, let set, let elements):
            guard let index = setIndex(set.name) else { return ENOENT }
            for element in elements {
                if let target = element.jumpTarget, let errno = jumpRefusal(to: target) { return errno }
                if let errno = sets[index].add(element) { return errno }
            }
            return nil
        case .deleteElements(_, _, let set, let elements):
            guard let index = setIndex(set.name) else { return ENOENT }
            for element in elements {
                guard sets[index].remove(key: element.key) else { return ENOENT }
            }
            return nil
        case .destroyElements(_, _, let set, let elements):
            guard let index = setIndex(set.name) else { return ENOENT }
            for element in elements { _ = sets[index].remove(key: element.key) }
            return nil
        case .addRule(_, _, let chain, let rule):
            guard let index = chainIndex(chain) else { return ENOENT }
            guard rule.setNames.allSatisfy({ setIndex($0) != nil }) else { return ENOENT }
            for target in rule.jumpTargets {
                if let errno = jumpRefusal(to: target) { return errno }
            }
            chains[index].rules.append(rule)
            return nil
        }
    }

    private func chainIndex(_ name: String) -> Int? { chains.firstIndex { $0.name == name } }
    private func setIndex(_ name: String) -> Int? { sets.firstIndex { $0.declaration.name == name } }

    /// Why a jump or goto to `chain` is refused, if it is.
    private func jumpRefusal(to chain: String) -> Int32? {
        guard let index = chainIndex(chain) else { return ENOENT }
        return chains[index].base == nil ? nil : EOPNOTSUPP
    }

    /// Whether a rule of another chain, or an element of a verdict map, jumps to `chain`.
    private func isChainReferenced(_ chain: String) -> Bool {
        chains.contains { $0.name != chain && $0.rules.contains { $0.jumpTargets.contains(chain) } }
            || sets.contains { $0.declaration.data == .verdict && $0.jumpTargets.contains(chain) }
    }
}

/// A set of `FakeTable`: its declaration, and its elements with an index by key.
struct FakeSet: Sendable, Equatable {
    let declaration: NamedSet
    private var elements: [SetElement] = []
    private var positions: [[Value]: Int] = [:]

    init(declaration: NamedSet) { self.declaration = declaration }

    var namedSet: NamedSet {
        var set = declaration
        set.elements = elements
        return set
    }

    /// Chains the elements of a verdict map jump or go to.
    var jumpTargets: Set<String> { Set(elements.compactMap(\.jumpTarget)) }

    /// Adds an element; an identical one is already there: nothing to do. Returns the errno
    /// of a refusal.
    mutating func add(_ element: SetElement) -> Int32? {
        if let position = positions[element.key] {
            return elements[position].data == element.data ? nil : EEXIST
        }
        if let size = declaration.size, elements.count >= size { return ENFILE }
        positions[element.key] = elements.count
        elements.append(element)
        return nil
    }

    /// Removes the element with this key; false when there is none.
    mutating func remove(key: [Value]) -> Bool {
        guard let position = positions.removeValue(forKey: key) else { return false }
        let last = elements.count - 1
        if position != last {
            elements[position] = elements[last]
            positions[elements[position].key] = position
        }
        elements.removeLast()
        return true
    }

    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.declaration == rhs.declaration && Set(lhs.elements) == Set(rhs.elements)
    }
}

extension SetElement {
    /// The chain a verdict element jumps or goes to.
    var jumpTarget: String? {
        switch data {
        case .verdict(.jump(let chain))?, .verdict(.goto(let chain))?: return chain
        default: return nil
        }
    }
}

extension Rule {
    /// The sets and maps the rule uses.
    var setNames: [String] {
        statements.compactMap { statement in
            switch statement {
            case .lookup(_, let set), .verdictMap(_, let set), .dnatMap(_, let set, _): return set
            default: return nil
            }
        }
    }

    /// The chains the rule jumps or goes to.
    var jumpTargets: [String] {
        statements.compactMap { statement in
            switch statement {
            case .verdict(.jump(let chain)), .verdict(.goto(let chain)): return chain
            default: return nil
            }
        }
    }
}
