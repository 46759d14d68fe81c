import Foundation
import KubeAPIStandIn

/// What a daemon test starts first: the stand-in API server over HTTPS (test certificates
/// made in a directory of its own), accepting one bearer token, and a kubeconfig that
/// reaches it with that token, read from a file the test may rewrite or written inline.
struct DaemonAPI {
    /// Holds the certificates, the kubeconfig and the token file; `removeDirectory()` deletes it.
    let directory: String
    let server: StandInAPIServer
    let kubeconfig: String
    /// The file the kubeconfig reads the token from; nil when the token is in the kubeconfig.
    let tokenFile: String?

    /// Starts the server and writes the kubeconfig; `purpose` names the directory.
    static func start(_ purpose: String, token: String, tokenInFile: Bool) async throws -> DaemonAPI {
        let directory = NSTemporaryDirectory() + "nftproxy-\(purpose)-\(getpid())"
        let certificates = try TestCertificates.make(in: directory)
        let server = try StandInAPIServer(configuration: .init(
            tls: (certificates.serverCertificatePath, certificates.serverKeyPath), tokens: [token]))
        _ = try await server.start()
        let kubeconfig = directory + "/kubeconfig"
        var tokenFile: String?
        if tokenInFile {
            let file = directory + "/token"
            try Data(token.utf8).write(to: URL(fileURLWithPath: file))
            try KubeconfigFile.write(to: kubeconfig, server: server.url, caPath: certificates.caCertificatePath,
                                     tokenFile: file)
            tokenFile = file
        } else {
            try KubeconfigFile.write(to: kubeconfig, server: server.url, caPath: certificates.caCertificatePath,
                                     token: token)
        }
        return DaemonAPI(directory: directory, server: server, kubeconfig: kubeconfig, tokenFile: tokenFile)
    }

    func removeDirectory() { try? FileManager.default.removeItem(atPath: directory) }
}

/// Runs `body` on a task and blocks this (non-cooperative) thread until it is done: for the
/// synchronous tests that drive the stand-in's async API.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: Result<T, any Error> = .failure(CancellationError())
    Task {
        do { result = .success(try await body()) } catch { result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try result.get()
}
