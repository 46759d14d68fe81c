import ArgumentParser
import Nftables
import ProxyCompiler

/// `nftproxy apply`: program the ruleset over netlink in one transaction.
struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Program the ruleset into the kernel in one atomic netlink transaction.",
        discussion: """
            Reads back what nftproxy's tables hold and commits only the difference, so a repeated \
            apply changes nothing and established connections are never disturbed by a flush.
            """)

    @OptionGroup var inputs: InputOptions
    @OptionGroup var node: NodeOptions
    @OptionGroup var namespace: NamespaceOptions

    func run() throws {
        let compilation = try compileInputs(inputs, node)
        do {
            let client = try NftablesClient(networkNamespace: namespace.networkNamespace)
            let report = try RulesetSync(client: client).sync(to: compilation.ruleset)
            if report.operations == 0 {
                print("nftproxy: the kernel already holds this ruleset; nothing committed")
            } else {
                print("nftproxy: committed \(report.operations) operations "
                      + "(\(report.elementsAdded) elements added, \(report.elementsRemoved) removed)")
            }
        } catch {
            printError("nftproxy: error: \(error)")
            throw ExitCode(1)
        }
    }
}
