#if canImport(Glibc)
import Glibc
#endif
import Netlink
import Nftables

/// The nf_tables state of an in-memory kernel: tables with their chains, rules, sets and
/// elements, changed one `Operation` at a time under the rules the kernel enforces.
///
/// What it refuses, as the kernel does (errno in `NetlinkError.rejected`):
/// - ENOENT: an operation on a table, chain or set that does not exist; deleting an element
///   the set does not hold; a rule or verdict element that names a missing set or chain.
/// - EEXIST: adding an element whose key is present with other data (the same element again
///   is accepted, as without NLM_F_EXCL); re-declaring a set or base chain differently.
/// - ENFILE: adding an element to a set that holds its declared size already.
/// - EBUSY: deleting a set a rule uses, or a chain a rule or verdict element jumps to.
/// - EOPNOTSUPP: a jump or goto to a base chain.
/// Deleting a chain deletes its rules first, as the kernel does; deleting a table deletes
/// everything in it.
public struct FakeTables: Sendable, Equatable {
    struct Key: Hashable, Sendable { var family: TableFamily; var name: String }

    private var tables: [Key: FakeTable] = [:]
    /// Creation order of the tables, for a stable listing.
    private var order: [Key] = []

    public init() {}

    /// Every table, in creation order.
    public var ruleset: Ruleset { Ruleset(tables: order.compactMap { tables[$0]?.table }) }

    /// One table as it stands; nil when there is none.
    public func table(_ family: TableFamily, _ name: String) -> Table? {
        tables[Key(family: family, name: name)]?.table
    }

    /// Applies every operation in order, or (on the first refusal) none of them.
    public mutating func apply(_ transaction: Transaction) throws(NetlinkError) {
        var scratch = self
        for operation in transaction.operations {
            try scratch.apply(operation)
        }
        self = scratch
    }

    /// Applies one operation; on a refusal nothing changed.
    public mutating func apply(_ operation: Operation) throws(NetlinkError) {
        func refuse(_ errno: Int32) -> NetlinkError {
            .rejected(operation: operation.summary, errno: errno, kernelMessage: nil)
        }
        switch operation {
        case .addTable(let family, let name):
            let key = Key(family: family, name: name)
            if tables[key] == nil {
                tables[key] = FakeTable(family: family, name: name)
                order.append(key)
            }
        case .deleteTable(let family, let name):
            let key = Key(family: family, name: name)
            guard tables.removeValue(forKey: key) != nil else { throw refuse(ENOENT) }
            order.removeAll { $0 == key }
        default:
            guard let family = operation.family, let name = operation.tableName else { return }
            let key = Key(family: family, name: name)
            guard var table = tables[key] else { throw refuse(ENOENT) }
            if let errno = table.apply(operation) { throw refuse(errno) }
            tables[key] = table
        }
    }
}

extension Operation {
    var family: TableFamily? {
        switch self {
        case .addTable(let family, _), .deleteTable(let family, _), .addChain(let family, _, _),
             .flushChain(let family, _, _), .deleteChain(let family, _, _), .addSet(let family, _, _),
             .deleteSet(let family, _, _), .addElements(let family, _, _, _), .deleteElements(let family, _, _, _),
             .destroyElements(let family, _, _, _),
             .addRule(let family, _, _, _):
            return family
        }
    }

    var tableName: String? {
        switch self {
        case .addTable(_, let table), .deleteTable(_, let table), .addChain(_, let table, _),
             .flushChain(_, let table, _), .deleteChain(_, let table, _), .addSet(_, let table, _),
             .deleteSet(_, let table, _), .addElements(_, let table, _, _), .deleteElements(_, let table, _, _),
             .destroyElements(_, let table, _, _),
             .addRule(_, let table, _, _):
            return table
        }
    }
}
