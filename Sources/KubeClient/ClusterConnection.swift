import Foundation

/// Everything needed to reach one API server: where it is, how its certificate is checked
/// and how the client authenticates. Built from a kubeconfig, from the in-cluster
/// environment, or by hand; `--master` replaces only the server.
public struct ClusterConnection: Sendable, Equatable {
    /// The API server's base URL, e.g. `https://10.96.0.1:443` (no trailing slash).
    public var server: String
    /// PEM bytes of the certificate authorities the server's certificate must chain to;
    /// nil means the system's trust store.
    public var certificateAuthorityPEM: [UInt8]?
    /// Skip verification of the server's certificate (kubeconfig `insecure-skip-tls-verify`).
    public var insecureSkipTLSVerify: Bool
    /// How requests authenticate.
    public var credentials: Credentials
    /// Things the caller should log, e.g. that TLS verification is off.
    public var warnings: [String]

    /// Creates a connection; see the properties for the meaning of each part.
    public init(
        server: String, certificateAuthorityPEM: [UInt8]? = nil,
        insecureSkipTLSVerify: Bool = false, credentials: Credentials = .init(), warnings: [String] = []
    ) {
        self.server = server
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.credentials = credentials
        self.warnings = warnings
    }

    /// The same connection with another server URL, as kube-proxy's `--master` does: the
    /// credentials and CA of the kubeconfig (if any) stay.
    public func overridingServer(_ master: String) throws(ConfigurationError) -> ClusterConnection {
        var copy = self
        copy.server = try ClusterConnection.validatedServer(master, source: "--master", entry: nil, field: nil)
        return copy
    }

    /// Checks that `server` is an http(s) URL with a host and returns it without a trailing slash.
    static func validatedServer(
        _ server: String, source: String, entry: String?, field: String?
    ) throws(ConfigurationError) -> String {
        guard let url = URL(string: server), let scheme = url.scheme?.lowercased(),
              scheme == "https" || scheme == "http", let host = url.host, !host.isEmpty
        else {
            throw ConfigurationError(source: source, entry: entry, field: field,
                                     problem: "\"\(server)\" is not an http(s) URL with a host")
        }
        var trimmed = server
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        return trimmed
    }
}

/// How requests authenticate. Several forms may be set at once, as in a kubeconfig: a client
/// certificate is presented during the TLS handshake, a token is sent as a bearer header.
public struct Credentials: Sendable, Equatable {
    /// A fixed bearer token (kubeconfig `token`). As in client-go, it wins over `tokenFile`.
    public var token: String?
    /// A file holding the bearer token, re-read when it changes (kubeconfig `tokenFile`, the
    /// in-cluster service-account token, which the kubelet rotates).
    public var tokenFile: String?
    /// PEM bytes of the client certificate (chain).
    public var clientCertificatePEM: [UInt8]?
    /// PEM bytes of the client certificate's private key.
    public var clientKeyPEM: [UInt8]?

    /// Creates credentials; all parts are optional.
    public init(token: String? = nil, tokenFile: String? = nil,
                clientCertificatePEM: [UInt8]? = nil, clientKeyPEM: [UInt8]? = nil) {
        self.token = token
        self.tokenFile = tokenFile
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
    }
}
