import Foundation
import Yams

/// Reads a kubeconfig file (`--kubeconfig FILE`): its clusters, users and contexts, and turns
/// the current context (or a named one) into a `ClusterConnection`.
///
/// Supported: `server`, `certificate-authority` / `-data`, `insecure-skip-tls-verify`,
/// users with `token`, `tokenFile`, `client-certificate` / `-data` and
/// `client-key` / `-data`. Relative paths are resolved against the kubeconfig's directory, as
/// kubectl does. `exec` and `auth-provider` users are rejected with an error naming them.
public enum Kubeconfig {
    /// Reads the file at `path` and resolves `context` (default: its `current-context`).
    public static func load(path: String, context: String? = nil) throws(ConfigurationError) -> ClusterConnection {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(source: path, problem: "file cannot be read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(source: path, problem: "not UTF-8 text")
        }
        let directory = (path as NSString).deletingLastPathComponent
        return try parse(text, source: path, baseDirectory: directory.isEmpty ? "." : directory, context: context)
    }

    /// Parses kubeconfig YAML `text`; `source` names it in errors, relative file names are
    /// resolved against `baseDirectory`.
    public static func parse(
        _ text: String, source: String, baseDirectory: String, context: String? = nil
    ) throws(ConfigurationError) -> ClusterConnection {
        let root: [String: Any]
        do {
            guard let loaded = try Yams.load(yaml: text) as? [String: Any] else {
                throw ConfigurationError(source: source, problem: "not a YAML mapping")
            }
            root = loaded
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(source: source, problem: "invalid YAML: \(error)")
        }
        let reader = KubeconfigReader(source: source, baseDirectory: baseDirectory, root: root)
        return try reader.connection(context: context)
    }
}

/// The lookups behind `Kubeconfig.parse`, with the source and directory at hand for errors
/// and relative paths.
struct KubeconfigReader {
    let source: String
    let baseDirectory: String
    let root: [String: Any]

    func connection(context requested: String?) throws(ConfigurationError) -> ClusterConnection {
        let contextName: String
        if let requested {
            contextName = requested
        } else {
            guard let current = root["current-context"] as? String, !current.isEmpty else {
                throw ConfigurationError(source: source, field: "current-context",
                                         problem: "not set (and no context was named)")
            }
            contextName = current
        }
        let contextEntry = "contexts[name=\(contextName)]"
        let context = try namedEntry(list: "contexts", name: contextName, body: "context")
        guard let clusterName = context["cluster"] as? String, !clusterName.isEmpty else {
            throw ConfigurationError(source: source, entry: contextEntry, field: "context.cluster", problem: "missing")
        }
        let cluster = try namedEntry(list: "clusters", name: clusterName, body: "cluster")
        var connection = try clusterConnection(cluster, entry: "clusters[name=\(clusterName)]")
        if let userName = context["user"] as? String, !userName.isEmpty {
            let user = try namedEntry(list: "users", name: userName, body: "user")
            connection.credentials = try credentials(user, entry: "users[name=\(userName)]")
        }
        return connection
    }

    /// The `body` mapping of the entry called `name` in the top-level list `list`.
    private func namedEntry(list: String, name: String, body: String) throws(ConfigurationError) -> [String: Any] {
        guard let entries = root[list] as? [Any] else {
            throw ConfigurationError(source: source, field: list, problem: "missing or not a list (looking for \"\(name)\")")
        }
        for (index, element) in entries.enumerated() {
            guard let entry = element as? [String: Any] else {
                throw ConfigurationError(source: source, entry: "\(list)[\(index)]", problem: "not a mapping")
            }
            guard entry["name"] as? String == name else { continue }
            guard let mapping = entry[body] as? [String: Any] else {
                throw ConfigurationError(source: source, entry: "\(list)[name=\(name)]", field: body,
                                         problem: "missing or not a mapping")
            }
            return mapping
        }
        throw ConfigurationError(source: source, field: list, problem: "no entry named \"\(name)\"")
    }

    private func clusterConnection(_ cluster: [String: Any], entry: String) throws(ConfigurationError) -> ClusterConnection {
        guard let server = cluster["server"] as? String, !server.isEmpty else {
            throw ConfigurationError(source: source, entry: entry, field: "cluster.server", problem: "missing")
        }
        let validated = try ClusterConnection.validatedServer(server, source: source, entry: entry, field: "cluster.server")
        let insecure = try boolean(cluster["insecure-skip-tls-verify"], entry: entry, field: "cluster.insecure-skip-tls-verify")
        let authority = try material(cluster, key: "certificate-authority", entry: entry, prefix: "cluster")
        if cluster["tls-server-name"] != nil {
            throw ConfigurationError(source: source, entry: entry, field: "cluster.tls-server-name",
                                     problem: "not supported: the server's certificate must name the host of cluster.server")
        }
        var warnings: [String] = []
        if insecure {
            warnings.append("\(source): \(entry): insecure-skip-tls-verify is set: the API server's certificate is not verified")
            if authority != nil {
                throw ConfigurationError(source: source, entry: entry, field: "cluster.insecure-skip-tls-verify",
                                         problem: "cannot be combined with a certificate authority (kubectl refuses this too)")
            }
        }
        if validated.lowercased().hasPrefix("http:") {
            warnings.append("\(source): \(entry): server \(validated) is plain HTTP: nothing is encrypted or verified")
        }
        return ClusterConnection(
            server: validated, certificateAuthorityPEM: authority,
            insecureSkipTLSVerify: insecure, warnings: warnings)
    }

    private func credentials(_ user: [String: Any], entry: String) throws(ConfigurationError) -> Credentials {
        for unsupported in ["exec", "auth-provider"] where user[unsupported] != nil {
            throw ConfigurationError(source: source, entry: entry, field: "user.\(unsupported)",
                                     problem: "credential plugins are not supported; use a token, tokenFile or client certificate")
        }
        var credentials = Credentials()
        if let token = user["token"] {
            guard let token = token as? String else {
                throw ConfigurationError(source: source, entry: entry, field: "user.token", problem: "not a string")
            }
            credentials.token = token.isEmpty ? nil : token
        }
        if let file = user["tokenFile"] {
            guard let file = file as? String, !file.isEmpty else {
                throw ConfigurationError(source: source, entry: entry, field: "user.tokenFile", problem: "not a file name")
            }
            let path = resolve(file)
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw ConfigurationError(source: source, entry: entry, field: "user.tokenFile",
                                         problem: "file \(path) cannot be read")
            }
            credentials.tokenFile = path
        }
        credentials.clientCertificatePEM = try material(user, key: "client-certificate", entry: entry, prefix: "user")
        credentials.clientKeyPEM = try material(user, key: "client-key", entry: entry, prefix: "user")
        if (credentials.clientCertificatePEM == nil) != (credentials.clientKeyPEM == nil) {
            let missing = credentials.clientKeyPEM == nil ? "client-key" : "client-certificate"
            throw ConfigurationError(source: source, entry: entry, field: "user.\(missing)",
                                     problem: "missing (a client certificate needs both certificate and key)")
        }
        return credentials
    }

    /// The bytes of `key` (a file name) or `key-data` (base64); nil when neither is set.
    private func material(_ mapping: [String: Any], key: String, entry: String, prefix: String) throws(ConfigurationError) -> [UInt8]? {
        if let data = mapping["\(key)-data"] {
            let field = "\(prefix).\(key)-data"
            guard let text = data as? String,
                  let decoded = Data(base64Encoded: text.filter { !$0.isWhitespace }), !decoded.isEmpty else {
                throw ConfigurationError(source: source, entry: entry, field: field, problem: "not base64 data")
            }
            return [UInt8](decoded)
        }
        if let file = mapping[key] {
            let field = "\(prefix).\(key)"
            guard let file = file as? String, !file.isEmpty else {
                throw ConfigurationError(source: source, entry: entry, field: field, problem: "not a file name")
            }
            let path = resolve(file)
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError(source: source, entry: entry, field: field, problem: "file \(path) cannot be read")
            }
            return [UInt8](contents)
        }
        return nil
    }

    private func boolean(_ value: Any?, entry: String, field: String) throws(ConfigurationError) -> Bool {
        switch value {
        case nil: return false
        case let flag as Bool: return flag
        case let text as String where text == "true" || text == "false": return text == "true"
        default: throw ConfigurationError(source: source, entry: entry, field: field, problem: "not true or false")
        }
    }

    private func resolve(_ path: String) -> String {
        path.hasPrefix("/") ? path : (baseDirectory as NSString).appendingPathComponent(path)
    }
}
