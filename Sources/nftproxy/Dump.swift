import ArgumentParser
import Nftables
import ProxyCompiler

/// `nftproxy dump`: print the ruleset as an nft script.
struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the ruleset as an nft script that `nft -f` loads unchanged.")

    @OptionGroup var inputs: InputOptions
    @OptionGroup var node: NodeOptions

    func run() throws {
        let (services, printed) = try loadServices(inputs)
        let compilation = Compiler(node: try node.nodeConfig()).compile(services)
        compilation.warnings.filter { !printed.contains($0) }.forEach { printError($0.text) }
        print(ScriptRenderer().render(compilation.ruleset), terminator: "")
    }
}
