import Nftables
import ProxyCompiler

/// Fills the endpoint counters' sets as the packet path would if every endpoint of every
/// frontend carried traffic: one element per pair in each counting set of its frontend's shard.
enum CountingSets {
    /// For the tables of `ruleset`, as the kernel holds them.
    static func fill(_ ruleset: Ruleset, client: NftablesClient) throws {
        for table in ruleset.tables {
            let derived = DerivedKeys(table)
            var transaction = Transaction()
            for set in table.sets where derived.countedPairSets.contains(set.name) {
                let keys = derived.pairKeys(of: set.name, in: table) ?? []
                transaction.addElements(keys.map { SetElement(key: $0) }, to: set, family: table.family, table: table.name)
            }
            try client.commit(transaction)
        }
    }

    /// For nftproxy's tables in `namespace`, read back from its kernel first.
    static func fill(namespace: String) throws {
        let client = try NftablesClient(networkNamespace: namespace)
        let reader = KernelReader(socket: client.socket, readsCounts: false)
        var tables: [Table] = []
        for family in TableFamily.allCases {
            if let read = try reader.read(family, RulesetLayout.tableName) { tables.append(read.table) }
        }
        try fill(Ruleset(tables: tables), client: client)
    }
}
