import Foundation
import ServiceModel
import Yams

/// The fields of a kube-proxy configuration file (`kind: KubeProxyConfiguration`,
/// `apiVersion: kubeproxy.config.k8s.io/v1alpha1`) that nftproxy honours; every other
/// field set in the file gets one warning, so nothing is silently ignored.
public struct KubeProxyConfigurationFile: Sendable, Equatable {
    public var hostnameOverride: String?
    public var bindAddress: String?
    public var healthzBindAddress: String?
    public var metricsBindAddress: String?
    /// Comma-separated ranges, as kube-proxy's `clusterCIDR`.
    public var clusterCIDR: String?
    public var nodePortAddresses: [String]?
    public var kubeconfig: String?
    public var masqueradeBit: Int?
    public var masqueradeAll: Bool?
    public var syncPeriod: Duration?
    public var minSyncPeriod: Duration?
    /// Fields set in the file that nftproxy does not implement, one warning each
    /// (``ServiceModel/Diagnostic/Code/unsupportedField``, the field's path in ``ServiceModel/Diagnostic/field``).
    public var warnings: [Diagnostic] = []

    public init() {}

    /// A problem that makes the file unusable: where, and what.
    public struct Problem: Error, CustomStringConvertible, Equatable {
        public var source: String
        public var field: String?
        public var problem: String
        public var description: String { "\(source): " + (field.map { "\($0): " } ?? "") + problem }
    }

    /// Fields kube-proxy has that nftproxy does not implement but that are harmless to
    /// ignore quietly when they hold their defaults are still reported: an operator who set
    /// one should know it has no effect.
    private static let honoured: Set<String> = [
        "apiVersion", "kind", "hostnameOverride", "bindAddress", "healthzBindAddress", "metricsBindAddress",
        "clusterCIDR", "nodePortAddresses", "clientConnection.kubeconfig", "nftables.masqueradeBit",
        "nftables.masqueradeAll", "nftables.syncPeriod", "nftables.minSyncPeriod", "mode",
    ]

    /// Parses the YAML (or JSON) text of a configuration file.
    public static func parse(_ text: String, source: String) throws(Problem) -> KubeProxyConfigurationFile {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw Problem(source: source, field: nil, problem: "empty file")
            }
            root = node
        } catch let problem as Problem {
            throw problem
        } catch {
            throw Problem(source: source, field: nil, problem: "not YAML: \(error)")
        }
        guard let mapping = root.mapping else { throw Problem(source: source, field: nil, problem: "expected a mapping") }
        var file = KubeProxyConfigurationFile()
        let reader = FieldReader(source: source)
        let kind = try reader.string(mapping, "kind")
        guard kind == "KubeProxyConfiguration" else {
            throw Problem(source: source, field: "kind", problem: "\(kind.map { "\"\($0)\"" } ?? "missing"), expected KubeProxyConfiguration")
        }
        let apiVersion = try reader.string(mapping, "apiVersion")
        guard apiVersion == "kubeproxy.config.k8s.io/v1alpha1" else {
            throw Problem(source: source, field: "apiVersion",
                          problem: "\(apiVersion.map { "\"\($0)\"" } ?? "missing"), expected kubeproxy.config.k8s.io/v1alpha1")
        }
        if let mode = try reader.string(mapping, "mode"), !mode.isEmpty, mode != "nftables" {
            file.warnings.append(unsupported(source, "mode", "\(source): mode: \"\(mode)\" is ignored: nftproxy always programs nftables"))
        }
        file.hostnameOverride = try reader.string(mapping, "hostnameOverride")
        file.bindAddress = try reader.string(mapping, "bindAddress")
        file.healthzBindAddress = try reader.string(mapping, "healthzBindAddress")
        file.metricsBindAddress = try reader.string(mapping, "metricsBindAddress")
        file.clusterCIDR = try reader.string(mapping, "clusterCIDR")
        file.nodePortAddresses = try reader.strings(mapping, "nodePortAddresses")
        if let client = try reader.mapping(mapping, "clientConnection") {
            file.kubeconfig = try reader.string(client, "kubeconfig", path: "clientConnection.kubeconfig")
        }
        if let nftables = try reader.mapping(mapping, "nftables") {
            file.masqueradeBit = try reader.int(nftables, "masqueradeBit", path: "nftables.masqueradeBit")
            file.masqueradeAll = try reader.bool(nftables, "masqueradeAll", path: "nftables.masqueradeAll")
            file.syncPeriod = try reader.duration(nftables, "syncPeriod", path: "nftables.syncPeriod")
            file.minSyncPeriod = try reader.duration(nftables, "minSyncPeriod", path: "nftables.minSyncPeriod")
        }
        for path in setLeaves(mapping, prefix: "") where !honoured.contains(path) {
            file.warnings.append(unsupported(source, path, "\(source): \(path) is not implemented by nftproxy and has no effect"))
        }
        return file
    }

    /// The warning for a field of the file at `source` that has no effect.
    private static func unsupported(_ source: String, _ field: String, _ message: String) -> Diagnostic {
        Diagnostic(.warning, .unsupportedField, object: DiagnosticObject(kind: "KubeProxyConfiguration", source: source),
                   field: field, message: message)
    }

    /// Paths of the fields that are set (not null, not empty), leaves of nested mappings.
    private static func setLeaves(_ mapping: Node.Mapping, prefix: String) -> [String] {
        var paths: [String] = []
        for (key, value) in mapping {
            guard let name = key.string else { continue }
            let path = prefix.isEmpty ? name : "\(prefix).\(name)"
            switch value {
            case .mapping(let nested):
                paths += setLeaves(nested, prefix: path)
            case .scalar(let scalar) where scalar.string.isEmpty || scalar.string == "null" || scalar.string == "~":
                continue
            case .sequence(let sequence) where sequence.isEmpty:
                continue
            default:
                paths.append(path)
            }
        }
        return paths
    }

    /// Typed field access with errors naming the field.
    private struct FieldReader {
        let source: String

        func node(_ mapping: Node.Mapping, _ key: String) -> Node? {
            guard let value = mapping[key] else { return nil }
            if case .scalar(let scalar) = value, scalar.style == .plain, ["", "null", "~"].contains(scalar.string) { return nil }
            return value
        }

        func string(_ mapping: Node.Mapping, _ key: String, path: String? = nil) throws(Problem) -> String? {
            guard let value = node(mapping, key) else { return nil }
            guard case .scalar(let scalar) = value else {
                throw Problem(source: source, field: path ?? key, problem: "expected a string")
            }
            return scalar.string
        }

        func strings(_ mapping: Node.Mapping, _ key: String) throws(Problem) -> [String]? {
            guard let value = node(mapping, key) else { return nil }
            guard case .sequence(let sequence) = value else {
                throw Problem(source: source, field: key, problem: "expected a list of strings")
            }
            var result: [String] = []
            for (index, item) in sequence.enumerated() {
                guard case .scalar(let scalar) = item else {
                    throw Problem(source: source, field: "\(key)[\(index)]", problem: "expected a string")
                }
                result.append(scalar.string)
            }
            return result
        }

        func mapping(_ mapping: Node.Mapping, _ key: String) throws(Problem) -> Node.Mapping? {
            guard let value = node(mapping, key) else { return nil }
            guard case .mapping(let nested) = value else {
                throw Problem(source: source, field: key, problem: "expected a mapping")
            }
            return nested
        }

        func int(_ mapping: Node.Mapping, _ key: String, path: String) throws(Problem) -> Int? {
            guard let text = try string(mapping, key, path: path) else { return nil }
            guard let value = Int(text) else { throw Problem(source: source, field: path, problem: "\"\(text)\" is not an integer") }
            return value
        }

        func bool(_ mapping: Node.Mapping, _ key: String, path: String) throws(Problem) -> Bool? {
            guard let text = try string(mapping, key, path: path) else { return nil }
            switch text {
            case "true": return true
            case "false": return false
            default: throw Problem(source: source, field: path, problem: "\"\(text)\" is not true or false")
            }
        }

        func duration(_ mapping: Node.Mapping, _ key: String, path: String) throws(Problem) -> Duration? {
            guard let text = try string(mapping, key, path: path) else { return nil }
            guard let duration = GoDuration.parse(text) else {
                throw Problem(source: source, field: path, problem: "\"\(text)\" is not a duration (such as 1s, 30s, 1h0m0s)")
            }
            return duration
        }
    }
}

/// Durations written as Go writes them (`300ms`, `1m30s`, `1h0m0s`), as Kubernetes
/// configuration files and kube-proxy's flags use them.
public enum GoDuration {
    /// The duration, or nil when `text` is not one. Negative durations are refused.
    public static func parse(_ text: String) -> Duration? {
        if text == "0" { return .zero }
        var rest = Substring(text)
        var total: Duration = .zero
        var parts = 0
        let units: [(String, Duration)] = [("ns", .nanoseconds(1)), ("us", .microseconds(1)), ("µs", .microseconds(1)),
                                           ("ms", .milliseconds(1)), ("s", .seconds(1)), ("m", .seconds(60)),
                                           ("h", .seconds(3600))]
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number), value.isFinite else { return nil }
            rest = rest.dropFirst(number.count)
            // The longest unit that matches: "ms" before "m".
            guard let (unit, size) = units.filter({ rest.hasPrefix($0.0) }).max(by: { $0.0.count < $1.0.count }) else {
                return nil
            }
            rest = rest.dropFirst(unit.count)
            total += size * value
            parts += 1
            guard parts <= 10, total <= .seconds(100 * 365 * 86400) else { return nil }
        }
        return parts > 0 ? total : nil
    }
}
