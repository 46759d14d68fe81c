import Foundation

/// The configuration a pod finds in its environment: `KUBERNETES_SERVICE_HOST` and
/// `KUBERNETES_SERVICE_PORT`, and the service account's `token` and `ca.crt` in
/// /var/run/secrets/kubernetes.io/serviceaccount. The token is a file that the kubelet
/// rotates, so the connection carries its path and the client re-reads it.
public enum InClusterConfig {
    /// Where the kubelet mounts the service account.
    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// Builds the connection from `environment` and the files in `directory` (injectable for tests).
    public static func load(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        directory: String = serviceAccountDirectory
    ) throws(ConfigurationError) -> ClusterConnection {
        let source = "in-cluster"
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty else {
            throw ConfigurationError(source: source, field: "KUBERNETES_SERVICE_HOST",
                                     problem: "not set: not running in a pod (use --kubeconfig or --master)")
        }
        guard let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
            throw ConfigurationError(source: source, field: "KUBERNETES_SERVICE_PORT", problem: "not set")
        }
        guard let portNumber = Int(port), (1...65535).contains(portNumber) else {
            throw ConfigurationError(source: source, field: "KUBERNETES_SERVICE_PORT", problem: "\"\(port)\" is not a port")
        }
        // An IPv6 address goes in brackets, as net.JoinHostPort does.
        let hostPart = host.contains(":") ? "[\(host)]" : host
        let tokenPath = (directory as NSString).appendingPathComponent("token")
        guard FileManager.default.isReadableFile(atPath: tokenPath) else {
            throw ConfigurationError(source: source, field: tokenPath, problem: "service-account token cannot be read")
        }
        let caPath = (directory as NSString).appendingPathComponent("ca.crt")
        guard let authority = FileManager.default.contents(atPath: caPath), !authority.isEmpty else {
            throw ConfigurationError(source: source, field: caPath, problem: "service-account CA cannot be read")
        }
        return ClusterConnection(
            server: "https://\(hostPart):\(portNumber)", certificateAuthorityPEM: [UInt8](authority),
            credentials: Credentials(tokenFile: tokenPath))
    }
}
