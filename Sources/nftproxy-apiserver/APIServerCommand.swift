import ArgumentParser
import Dispatch
import Foundation
import KubeAPIStandIn

/// Runs the project's stand-in Kubernetes API server on 127.0.0.1 until SIGINT or SIGTERM.
@main
struct APIServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nftproxy-apiserver",
        abstract: "Stand-in Kubernetes API server (Services, EndpointSlices, Nodes, Namespaces) for tests and benchmarks.")

    @Option(help: "Port on 127.0.0.1 (0: any free port).")
    var port: Int = 0

    @Option(name: .customLong("tls-dir"), help: "Serve HTTPS with a CA and server certificate made in this directory (needs openssl).")
    var tlsDirectory: String?

    @Option(name: .customLong("token"), help: "A bearer token to accept (repeatable); none: accept every request.")
    var tokens: [String] = []

    @Option(name: .customLong("write-kubeconfig"), help: "Write a kubeconfig for this server to this file.")
    var kubeconfigPath: String?

    @Option(name: .customLong("objects"), help: "JSON file of objects to serve (a List or one object; repeatable).")
    var objectFiles: [String] = []

    @Option(name: .customLong("bookmark-interval"), help: "Seconds between BOOKMARK events to watches that allow them.")
    var bookmarkInterval: Double?

    func run() async throws {
        var configuration = StandInAPIServer.Configuration(tokens: Set(tokens))
        var caPath: String?
        if let tlsDirectory {
            let certificates = try TestCertificates.make(in: tlsDirectory)
            configuration.tls = (certificates.serverCertificatePath, certificates.serverKeyPath)
            caPath = certificates.caCertificatePath
        }
        if let bookmarkInterval {
            guard bookmarkInterval > 0 else { throw ValidationError("--bookmark-interval must be positive") }
            configuration.bookmarkInterval = .milliseconds(Int64(bookmarkInterval * 1000))
        }
        let server = try StandInAPIServer(configuration: configuration)
        for file in objectFiles {
            let count = try server.load(file: file)
            say("\(file): \(count) objects")
        }
        try await server.start(port: port)
        if let kubeconfigPath {
            try KubeconfigFile.write(to: kubeconfigPath, server: server.url, caPath: caPath, token: tokens.first)
        }
        say("listening on \(server.url)")
        await waitForTermination()
        await server.shutdown()
    }

    /// Writes a line to standard output at once (a script waits for it).
    private func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    /// Returns on SIGINT or SIGTERM.
    private func waitForTermination() async {
        let (signals, continuation) = AsyncStream<Int32>.makeStream()
        let sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
        for await _ in signals { break }
        withExtendedLifetime(sources) {}
    }
}

