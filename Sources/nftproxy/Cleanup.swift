import ArgumentParser
import Nftables
import ProxyCompiler

/// `nftproxy cleanup`: remove every table nftproxy owns.
struct Cleanup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove every table nftproxy owns (other tables are left alone); running it twice is fine.")

    @OptionGroup var namespace: NamespaceOptions

    func run() throws {
        var transaction = Transaction()
        for family in TableFamily.allCases {
            transaction.remove(family: family, table: RulesetLayout.tableName)
        }
        do {
            let client = try NftablesClient(networkNamespace: namespace.networkNamespace)
            try client.commit(transaction)
        } catch {
            printError("nftproxy: error: \(error)")
            throw ExitCode(1)
        }
    }
}
