import Foundation
import ServiceModel

/// What the daemon reads from this node's Node object.
public struct NodeObjectFacts: Sendable, Equatable {
    /// InternalIP addresses, or the ExternalIP ones when it has no InternalIP (at most one
    /// per family, the first listed, as kube-proxy picks them).
    public var addresses: [IPAddress]
    /// `topology.kubernetes.io/zone`.
    public var zone: String?
    /// False while the node is being deleted or carries the autoscaler's to-be-deleted taint.
    public var eligible: Bool

    public init(addresses: [IPAddress], zone: String?, eligible: Bool) {
        self.addresses = addresses; self.zone = zone; self.eligible = eligible
    }

    /// Reads a Node object's JSON; nil with a reason when it is not one.
    public static func parse(_ json: some Collection<UInt8>) -> Result<NodeObjectFacts, NodeParseError> {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(json))) as? [String: Any] else {
            return .failure(NodeParseError("not a JSON object"))
        }
        let metadata = object["metadata"] as? [String: Any] ?? [:]
        let labels = metadata["labels"] as? [String: Any] ?? [:]
        let status = object["status"] as? [String: Any] ?? [:]
        let spec = object["spec"] as? [String: Any] ?? [:]
        var byType: [String: [IPAddress]] = [:]
        for entry in status["addresses"] as? [[String: Any]] ?? [] {
            guard let type = entry["type"] as? String, let text = entry["address"] as? String,
                  let address = IPAddress(text) else { continue }
            byType[type, default: []].append(address)
        }
        let preferred = !(byType["InternalIP"] ?? []).isEmpty ? byType["InternalIP"] ?? [] : byType["ExternalIP"] ?? []
        var addresses: [IPAddress] = []
        for family in IPFamily.allCases {
            if let first = preferred.first(where: { $0.family == family }) { addresses.append(first) }
        }
        let deleting = metadata["deletionTimestamp"] is String
        let tainted = (spec["taints"] as? [[String: Any]] ?? []).contains {
            ($0["key"] as? String) == ProxyHealth.toBeDeletedTaint
        }
        return .success(NodeObjectFacts(addresses: addresses, zone: labels["topology.kubernetes.io/zone"] as? String,
                                        eligible: !deleting && !tainted))
    }
}

/// A Node object that cannot be read.
public struct NodeParseError: Error, CustomStringConvertible, Equatable {
    public var description: String
    init(_ description: String) { self.description = description }
}
