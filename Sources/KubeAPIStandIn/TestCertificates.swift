import Foundation

/// A throw-away certificate authority and a server certificate for 127.0.0.1 and localhost,
/// made with the `openssl` command in a directory of the caller's, for tests and benchmarks.
public struct TestCertificates: Sendable {
    /// The directory holding the files.
    public let directory: String
    /// PEM of the CA certificate (what clients trust).
    public var caCertificatePath: String { directory + "/ca.crt" }
    /// PEM of the server certificate, signed by the CA.
    public var serverCertificatePath: String { directory + "/server.crt" }
    /// PEM of the server's private key.
    public var serverKeyPath: String { directory + "/server.key" }

    /// Makes a CA (`name` in its subject) and a server certificate in `directory` (created if
    /// needed); valid for two days.
    public static func make(in directory: String, name: String = "nftproxy-test-ca") throws(StandInError) -> TestCertificates {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .startup("cannot create \(directory): \(error)")
        }
        let certificates = TestCertificates(directory: directory)
        let extensions = directory + "/server.ext"
        let text = "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
            + "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        guard FileManager.default.createFile(atPath: extensions, contents: Data(text.utf8)) else {
            throw .startup("cannot write \(extensions)")
        }
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try openssl(["req", "-x509"] + curve + ["-keyout", directory + "/ca.key", "-out", certificates.caCertificatePath,
                     "-days", "2", "-subj", "/CN=\(name)",
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        try openssl(["req"] + curve + ["-keyout", certificates.serverKeyPath, "-out", directory + "/server.csr",
                     "-subj", "/CN=127.0.0.1"])
        try openssl(["x509", "-req", "-in", directory + "/server.csr", "-CA", certificates.caCertificatePath,
                     "-CAkey", directory + "/ca.key", "-CAcreateserial", "-out", certificates.serverCertificatePath,
                     "-days", "2", "-extfile", extensions])
        return certificates
    }

    /// Makes a client certificate for `user` signed by this CA (`client.crt`, `client.key`);
    /// the stand-in accepts it in place of a token when it trusts this CA for clients.
    public func makeClientCertificate(user: String = "nftproxy") throws(StandInError) -> (certificatePath: String, keyPath: String) {
        let extensions = directory + "/client.ext"
        let text = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
        guard FileManager.default.createFile(atPath: extensions, contents: Data(text.utf8)) else {
            throw .startup("cannot write \(extensions)")
        }
        let certificate = directory + "/client.crt"
        let key = directory + "/client.key"
        try Self.openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                          "-out", directory + "/client.csr", "-subj", "/CN=\(user)"])
        try Self.openssl(["x509", "-req", "-in", directory + "/client.csr", "-CA", caCertificatePath,
                          "-CAkey", directory + "/ca.key", "-CAcreateserial", "-out", certificate, "-days", "2",
                          "-extfile", extensions])
        return (certificate, key)
    }

    private static func openssl(_ arguments: [String]) throws(StandInError) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw .startup("cannot run openssl: \(error)")
        }
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw .startup("openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(String(decoding: output, as: UTF8.self))")
        }
    }
}

/// Writes a kubeconfig that points kubectl, the Python client or nftproxy at a server.
public enum KubeconfigFile {
    /// The YAML of a kubeconfig with one cluster, user and context (`standin`); `caPath`
    /// nil leaves the CA out, `tokenFile` is written as `tokenFile`, `token` as `token`.
    public static func yaml(server: String, caPath: String?, token: String? = nil, tokenFile: String? = nil,
                            clientCertificate: (certificatePath: String, keyPath: String)? = nil) -> String {
        var cluster = "    server: \(server)\n"
        if let caPath { cluster += "    certificate-authority: \(caPath)\n" }
        var user = ""
        if let token { user += "    token: \(token)\n" }
        if let tokenFile { user += "    tokenFile: \(tokenFile)\n" }
        if let clientCertificate {
            user += "    client-certificate: \(clientCertificate.certificatePath)\n    client-key: \(clientCertificate.keyPath)\n"
        }
        if user.isEmpty { user = "    {}\n" }
        return """
            apiVersion: v1
            kind: Config
            clusters:
            - name: standin
              cluster:
            \(cluster)users:
            - name: standin
              user:
            \(user)contexts:
            - name: standin
              context:
                cluster: standin
                user: standin
            current-context: standin

            """
    }

    /// Writes `yaml(...)` to `path`.
    public static func write(to path: String, server: String, caPath: String?, token: String? = nil,
                             tokenFile: String? = nil,
                             clientCertificate: (certificatePath: String, keyPath: String)? = nil) throws(StandInError) {
        let text = yaml(server: server, caPath: caPath, token: token, tokenFile: tokenFile, clientCertificate: clientCertificate)
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            throw .startup("cannot write \(path)")
        }
    }
}
