import ArgumentParser

/// The nftproxy command line: argument parsing only; the work happens in the libraries.
@main
struct Nftproxy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nftproxy",
        abstract: "A kube-proxy replacement: Kubernetes Services as one atomic nftables ruleset.",
        version: NftproxyVersion.current,
        subcommands: [Dump.self, Plan.self, Apply.self, Run.self, Cleanup.self, Explain.self, Stats.self, Demo.self]
    )
}

/// The version `nftproxy --version` prints.
enum NftproxyVersion {
    static let current = "0.5.0"
}
