import Foundation
import KubeAPIStandIn
import XCTest

/// The certificates of all tests in this process (openssl runs once), and a second CA that
/// the server's certificate does not chain to.
enum SharedCertificates {
    /// One directory per test process: the certificates are made anew by each process, so two
    /// runs at once (of one user or of several) must not overwrite each other's CA and key.
    /// It is removed when the process exits; each fixture removes its own subdirectory earlier.
    static let directory = NSTemporaryDirectory() + "nftproxy-standin-tests-\(getuid())-\(getpid())"
    static let server: Result<TestCertificates, StandInError> = Result { () throws(StandInError) in
        atexit { try? FileManager.default.removeItem(atPath: SharedCertificates.directory) }
        return try TestCertificates.make(in: directory + "/pki")
    }
    static let client: Result<(certificatePath: String, keyPath: String), StandInError> = Result {
        () throws(StandInError) in try server.get().makeClientCertificate()
    }
    static let other: Result<TestCertificates, StandInError> = Result { () throws(StandInError) in
        try TestCertificates.make(in: directory + "/other-pki", name: "unrelated-ca")
    }
}

/// A stand-in API server over HTTPS with a token file and a kubeconfig, in a directory of
/// its own that is removed by `shutdown()`.
final class StandInFixture: Sendable {
    let server: StandInAPIServer
    let certificates: TestCertificates
    let directory: String
    /// Holds the token "token-1"; the server accepts "token-1".
    let tokenFile: String
    /// A kubeconfig with the CA and `tokenFile`.
    let kubeconfig: String

    init(bookmarkInterval: Duration? = nil, historyLimit: Int = 100_000) async throws {
        certificates = try SharedCertificates.server.get()
        directory = SharedCertificates.directory + "/" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        tokenFile = directory + "/token"
        kubeconfig = directory + "/kubeconfig"
        try Data("token-1".utf8).write(to: URL(fileURLWithPath: tokenFile))
        server = try StandInAPIServer(configuration: .init(
            tls: (certificates.serverCertificatePath, certificates.serverKeyPath), tokens: ["token-1"],
            clientCertificateAuthorityPath: certificates.caCertificatePath,
            bookmarkInterval: bookmarkInterval, historyLimit: historyLimit))
        try await server.start()
        try KubeconfigFile.write(to: kubeconfig, server: server.url, caPath: certificates.caCertificatePath,
                                 tokenFile: tokenFile)
    }

    func shutdown() async {
        await server.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Writes a kubeconfig with the client certificate and no token, and returns its path.
    func kubeconfigWithClientCertificate() throws -> String {
        let path = directory + "/kubeconfig-certificate"
        try KubeconfigFile.write(to: path, server: server.url, caPath: certificates.caCertificatePath,
                                 clientCertificate: try SharedCertificates.client.get())
        return path
    }

    /// Writes a kubeconfig with a fixed token into the fixture's directory and returns its path.
    func kubeconfig(token: String) throws -> String {
        let path = directory + "/kubeconfig-\(token)"
        try KubeconfigFile.write(to: path, server: server.url, caPath: certificates.caCertificatePath, token: token)
        return path
    }
}

/// Realistic objects for the stand-in.
enum Objects {
    static func service(_ namespace: String, _ name: String, labels: [String: String] = [:], port: Int = 80) -> [String: Any] {
        [
            "metadata": ["name": name, "namespace": namespace, "labels": labels],
            "spec": ["type": "ClusterIP", "clusterIP": "10.96.0.\(abs(name.hashValue % 200) + 10)",
                     "clusterIPs": ["10.96.0.\(abs(name.hashValue % 200) + 10)"],
                     "ports": [["name": "http", "port": port, "protocol": "TCP", "targetPort": 8080]],
                     "selector": ["app": name]],
            "status": ["loadBalancer": [String: Any]()],
        ]
    }

    static func endpointSlice(_ namespace: String, _ name: String, service: String, address: String) -> [String: Any] {
        [
            "metadata": ["name": name, "namespace": namespace, "labels": ["kubernetes.io/service-name": service]],
            "addressType": "IPv4",
            "endpoints": [["addresses": [address], "conditions": ["ready": true, "serving": true, "terminating": false]]],
            "ports": [["name": "http", "port": 8080, "protocol": "TCP"]],
        ]
    }
}

/// A child process (kubectl, python3) with its output collected as it arrives.
final class ChildProcess: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var stdoutData = Data()
    private var stderrData = Data()
    private let finished = DispatchSemaphore(value: 0)

    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        out.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            self.lock.lock()
            self.stdoutData.append(data)
            self.lock.unlock()
        }
        err.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            self.lock.lock()
            self.stderrData.append(data)
            self.lock.unlock()
        }
        let semaphore = finished
        process.terminationHandler = { _ in semaphore.signal() }
        try process.run()
    }

    var stdout: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: stdoutData, as: UTF8.self)
    }

    var stderr: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: stderrData, as: UTF8.self)
    }

    /// Waits for the process to exit (killing it after `timeout` seconds) and returns its status.
    @discardableResult
    func wait(timeout: Double = 20) -> Int32 {
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            finished.wait()
        }
        // Leave the semaphore signalled: the process stays exited for later calls.
        finished.signal()
        // Let the readability handlers take the last bytes.
        Thread.sleep(forTimeInterval: 0.05)
        return process.terminationStatus
    }

    func terminate() {
        if process.isRunning { process.terminate() }
        _ = wait()
    }
}

/// Polls `condition` every 10 ms until it holds or `timeout` seconds pass.
func eventually(_ timeout: Double = 10, _ what: String, file: StaticString = #filePath, line: UInt = #line,
                _ condition: () -> Bool) async {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() > deadline {
            XCTFail("timed out waiting for: \(what)", file: file, line: line)
            return
        }
        try? await Task.sleep(for: .milliseconds(10))
    }
}
