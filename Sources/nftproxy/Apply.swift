import ArgumentParser
import Nftables
import ProxyCompiler

/// `nftproxy apply`: program the ruleset over netlink in one transaction.
struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Program the ruleset into the kernel in one atomic netlink transaction.")

    @OptionGroup var inputs: InputOptions
    @OptionGroup var node: NodeOptions
    @OptionGroup var namespace: NamespaceOptions

    func run() throws {
        let compilation = try compileInputs(inputs, node)
        var transaction = Transaction()
        for table in compilation.ruleset.tables {
            transaction.replace(table)
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
