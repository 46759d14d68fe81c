import ArgumentParser
import Nftables
import ProxyEngine

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

    @Flag(name: [.customShort("v"), .long], help: "List the operations committed, as `nftproxy plan` lists them.")
    var verbose = false

    func run() throws {
        let (services, printed) = try loadServices(inputs)
        let config = try node.nodeConfig()
        do {
            let proxy = try ServiceProxy(node: config, networkNamespace: namespace.networkNamespace)
            let report = try proxy.apply(services)
            report.warnings.filter { !printed.contains($0) }.forEach { printError($0.text) }
            if verbose { report.sync.summaries.forEach { print("  " + $0) } }
            if report.sync.operations == 0 {
                print("nftproxy: the kernel already holds this ruleset; nothing committed")
            } else {
                print("nftproxy: committed \(report.sync.operations) operations "
                      + "(\(report.sync.elementsAdded) elements added, \(report.sync.elementsRemoved) removed)"
                      + (report.flowsDeleted > 0 ? "; deleted \(report.flowsDeleted) stale UDP conntrack entries" : ""))
            }
        } catch {
            printError("nftproxy: error: \(error)")
            throw ExitCode(1)
        }
    }
}
