import Foundation
import Nftables
import ServiceModel

extension Explanation {
    /// Plain sentences for people: what the packet matched, where it may go with which
    /// probability, whether its source is masqueraded and why, and the rules it met.
    public var text: String {
        var lines = ["\(packet.transport) \(packet.source) -> \(hostPort(packet.destination, packet.destinationPort)), "
                     + origin.phrase + ":"]
        if let frontend {
            lines.append("  matches " + frontend.phrase)
        }
        switch verdict {
        case .balanced(let shares):
            lines.append(shares.count == 1 ? "  DNAT to its only endpoint:"
                : "  DNAT to one of \(shares.count) endpoints, chosen at random for each new connection:")
            let width = shares.map { hostPort($0.address, $0.port).count }.max() ?? 0
            for share in shares {
                let target = hostPort(share.address, share.port)
                var line = "    " + target + String(repeating: " ", count: width - target.count)
                line += "  " + percent(share.probability)
                if let node = share.nodeName { line += "  on \(node)" }
                line += share.masquerade.map { ", source masqueraded: \($0.phrase)" } ?? ", source kept"
                lines.append(line)
            }
        case .rejected(let kind, let reason):
            lines.append("  rejected (\(kind == .tcpReset ? "TCP reset" : "ICMP port unreachable")): \(reason.phrase)")
        case .dropped(let chain):
            lines.append("  dropped by a rule in chain \(chain)")
        case .untouched(let masquerade):
            lines.append("  not a service address: nftproxy's rules do not translate it"
                         + (masquerade.map { "; its source is masqueraded: \($0.phrase)" } ?? ""))
        }
        if let path = paths.first, !path.steps.isEmpty {
            lines.append(paths.count > 1 ? "  rules met (first of \(paths.count) paths):" : "  rules met:")
            for step in path.steps {
                lines.append("    \(step.hook.rawValue) \(step.chain) #\(step.ruleIndex): \(step.rule)")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// A JSON object for tests and machines (keys sorted, stable).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(ExplanationDocument(self)) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

private func hostPort(_ address: IPAddress, _ port: UInt16) -> String {
    address.family == .v6 ? "[\(address)]:\(port)" : "\(address):\(port)"
}

private func percent(_ probability: Double) -> String {
    String(format: "%5.1f%%", probability * 100)
}

extension PacketOrigin {
    var phrase: String {
        switch self {
        case .pod: return "from a pod"
        case .node: return "from the node itself"
        case .outside: return "from outside the node"
        }
    }
}

extension MatchedFrontend {
    var phrase: String {
        let target = address.map { hostPort($0, port) } ?? String(port)
        var text = "\(kind.rawValue) \(target)/\(transport)"
        if let service {
            text = "Service \(service)" + (portName.map { $0.isEmpty ? "" : ", port \($0)" } ?? "") + " (\(text))"
        }
        return text
    }
}

extension MasqueradeReason {
    /// Why, in a few words.
    public var phrase: String {
        switch self {
        case .sourceOutsideClusterCIDRs: return "the source is outside the cluster CIDRs"
        case .masqueradeAll: return "--masquerade-all"
        case .externalAddress: return "external traffic to an externalIP or LoadBalancer IP (externalTrafficPolicy Cluster)"
        case .nodePort: return "traffic to a NodePort (externalTrafficPolicy Cluster)"
        case .hairpin: return "hairpin: the pod reached itself through the service"
        case .nodeShortCircuit: return "the node's own traffic to an externalTrafficPolicy Local address (sent to every endpoint)"
        case .markedIn(let chain): return "marked in chain \(chain)"
        }
    }

    var code: String {
        switch self {
        case .sourceOutsideClusterCIDRs: return "source-outside-cluster-cidrs"
        case .masqueradeAll: return "masquerade-all"
        case .externalAddress: return "external-address"
        case .nodePort: return "nodeport"
        case .hairpin: return "hairpin"
        case .nodeShortCircuit: return "node-short-circuit"
        case .markedIn(let chain): return "chain:" + chain
        }
    }
}

extension RefusalReason {
    /// Why, in a few words.
    public var phrase: String {
        switch self {
        case .noEndpoints: return "the service has no usable endpoints"
        case .undefinedPort: return "no service defines this port and protocol on this ClusterIP"
        case .ruleIn(let chain): return "by a rule in chain \(chain)"
        }
    }

    var code: String {
        switch self {
        case .noEndpoints: return "no-endpoints"
        case .undefinedPort: return "undefined-port"
        case .ruleIn(let chain): return "chain:" + chain
        }
    }
}

/// The JSON shape of an explanation.
private struct ExplanationDocument: Encodable {
    struct Frontend: Encodable {
        var kind: String, address: String?, port: UInt16, protocolName: String, service: String?, portName: String?
        enum CodingKeys: String, CodingKey { case kind, address, port, protocolName = "protocol", service, portName }
    }
    struct Endpoint: Encodable {
        var address: String, port: UInt16, probability: Double, node: String?, masquerade: String?
    }
    struct Step: Encodable { var hook: String, chain: String, rule: Int, text: String }
    struct Path: Encodable {
        var probability: Double, destination: String, destinationPort: UInt16, masqueraded: Bool, fate: String
        var steps: [Step]
    }

    var source: String, destination: String, destinationPort: UInt16, protocolName: String, origin: String
    var frontend: Frontend?
    var verdict: String
    var reason: String?
    var rejectWith: String?
    var endpoints: [Endpoint]?
    var paths: [Path]

    enum CodingKeys: String, CodingKey {
        case source, destination, destinationPort, protocolName = "protocol", origin, frontend, verdict, reason
        case rejectWith, endpoints, paths
    }

    init(_ explanation: Explanation) {
        let packet = explanation.packet
        source = packet.source.description
        destination = packet.destination.description
        destinationPort = packet.destinationPort
        protocolName = packet.transport.rawValue
        origin = explanation.origin.rawValue
        frontend = explanation.frontend.map {
            Frontend(kind: $0.kind.rawValue, address: $0.address?.description, port: $0.port,
                     protocolName: $0.transport.rawValue, service: $0.service?.description, portName: $0.portName)
        }
        switch explanation.verdict {
        case .balanced(let shares):
            verdict = "balanced"
            endpoints = shares.map {
                Endpoint(address: $0.address.description, port: $0.port, probability: $0.probability,
                         node: $0.nodeName, masquerade: $0.masquerade?.code)
            }
        case .rejected(let kind, let why):
            verdict = "rejected"
            reason = why.code
            rejectWith = kind == .tcpReset ? "tcp-reset" : "port-unreachable"
        case .dropped(let chain):
            verdict = "dropped"
            reason = "chain:" + chain
        case .untouched(let masquerade):
            verdict = "untouched"
            reason = masquerade?.code
        }
        paths = explanation.paths.map { path in
            Path(probability: path.probability, destination: path.packet.destination.description,
                 destinationPort: path.packet.destinationPort, masqueraded: path.masqueraded,
                 fate: path.fate.code,
                 steps: path.steps.map { Step(hook: $0.hook.rawValue, chain: $0.chain, rule: $0.ruleIndex, text: $0.rule) })
        }
    }
}

extension PacketFate {
    var code: String {
        switch self {
        case .deliveredLocally: return "delivered-locally"
        case .forwarded: return "forwarded"
        case .sent: return "sent"
        case .rejected: return "rejected"
        case .dropped: return "dropped"
        }
    }
}
