import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `nftproxy demo`: runs `nftproxy-demo`, the sandbox demo, installed next to this binary.
///
/// The demo needs the test sandbox (network-namespace topology, echo servers), which the
/// `nftproxy` binary does not link; this subcommand only hands its arguments on.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the echo-server NodePort demo in a sandbox of network namespaces (as root).",
        discussion: "Runs nftproxy-demo (built with `swift build --product nftproxy-demo`) with these arguments; "
            + "`nftproxy demo --help` shows its options.")

    @Argument(parsing: .captureForPassthrough, help: "Arguments for nftproxy-demo.")
    var arguments: [String] = []

    func run() throws {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        let demo = URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("nftproxy-demo").path
        guard FileManager.default.isExecutableFile(atPath: demo) else {
            printError("nftproxy demo: \(demo) not found; build it with `swift build --product nftproxy-demo` "
                       + "(bash tools/demo.sh builds and runs it)")
            throw ExitCode(1)
        }
        let argv = [demo] + arguments
        let cArguments = argv.map { strdup($0) } + [nil]
        execv(demo, cArguments)
        printError("nftproxy demo: cannot run \(demo): \(String(cString: strerror(errno)))")
        throw ExitCode(1)
    }
}
