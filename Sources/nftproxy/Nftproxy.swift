import ArgumentParser

/// The nftproxy command line: argument parsing only; the work happens in the libraries.
@main
struct Nftproxy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nftproxy",
        abstract: "A kube-proxy replacement: Kubernetes Services as one atomic nftables ruleset.",
        subcommands: [Dump.self, Plan.self, Apply.self, Cleanup.self, Explain.self, Demo.self]
    )
}
