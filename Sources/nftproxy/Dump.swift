import ArgumentParser
import Nftables

/// `nftproxy dump`: print the ruleset as an nft script.
struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the ruleset as an nft script that `nft -f` loads unchanged.")

    @OptionGroup var inputs: InputOptions
    @OptionGroup var node: NodeOptions

    func run() throws {
        let compilation = try compileInputs(inputs, node)
        print(ScriptRenderer().render(compilation.ruleset), terminator: "")
    }
}
