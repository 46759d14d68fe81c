import ArgumentParser

/// `nftproxy demo`: the echo-server NodePort in a sandbox of network namespaces.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the echo-server NodePort demo in a sandbox of network namespaces.")

    func run() throws {
        throw ValidationError("demo: not built yet")
    }
}
