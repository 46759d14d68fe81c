/// The generation stamp of one of our tables: a set of one element, the nf_tables generation
/// that nftproxy's last commit to the table produced (docs/ruleset.md, "Trusted read-back").
///
/// nf_tables moves its netns-wide generation by one on every commit, by anyone, and a batch
/// can carry the generation it expects (refused if it moved). A commit that expects `g`
/// therefore produces `g + 1` (0 is skipped), and writes that into the stamp in the same
/// batch: afterwards, the kernel's generation equals the stamp exactly as long as nobody
/// has committed anything since. A read-back that finds them equal knows that the table is
/// as an nftproxy commit left it, digests included (``FrontendDigest``).
///
/// No rule refers to the set; the packet path never sees it.
public enum GenerationStamp {
    /// The set's name.
    public static let setName = "generation-stamp"

    /// The set, holding `elements` (no size: it holds one element, or what a foreign writer put in).
    public static func set(elements: [SetElement] = []) -> NamedSet {
        NamedSet(name: setName, key: .types([.mark]), elements: elements)
    }

    /// The element that stamps `generation`.
    public static func element(_ generation: UInt32) -> SetElement {
        SetElement(key: [.integer(generation)])
    }

    /// The generation a commit produces when it expects `expected` (the kernel skips 0 when it wraps).
    public static func generation(after expected: UInt32) -> UInt32 {
        let next = expected &+ 1
        return next == 0 ? 1 : next
    }

    /// The generation `table`'s stamp holds; nil without a stamp set, or when the set holds
    /// anything but exactly one element of the expected shape.
    public static func generation(in table: Table) -> UInt32? {
        guard let set = table.sets.first(where: { $0.name == setName }),
              set.withoutElements == Self.set().withoutElements, set.elements.count == 1, let element = set.elements.first, element.data == nil,
              element.comment == nil, case .integer(let generation)? = element.key.first, element.key.count == 1
        else { return nil }
        return generation
    }

    /// The elements `table`'s stamp set holds; nil when it has no such set.
    public static func elements(in table: Table) -> [SetElement]? {
        table.sets.first(where: { $0.name == setName })?.elements
    }

    /// `table` without its stamp set (to compare what two kernels hold for the services).
    public static func unstamped(_ table: Table) -> Table {
        var copy = table
        copy.sets.removeAll { $0.name == setName }
        return copy
    }

    /// `table` with its stamp set holding `elements` (declared, after the other sets, if missing).
    public static func stamped(_ table: Table, elements: [SetElement]) -> Table {
        var copy = table
        if let index = copy.sets.firstIndex(where: { $0.name == setName }) {
            copy.sets[index].elements = elements
        } else {
            copy.sets.append(set(elements: elements))
        }
        return copy
    }

    /// The operations that move `table`'s stamp from `old` (the elements the kernel's stamp set
    /// holds, all of them) to `generation`, to be appended to a transaction.
    public static func restamp(family: TableFamily, table: String, from old: [SetElement],
                               to generation: UInt32) -> Transaction {
        var transaction = Transaction()
        let shape = set()
        transaction.deleteElements(old, from: shape, family: family, table: table)
        transaction.addElements([element(generation)], to: shape, family: family, table: table)
        return transaction
    }
}
