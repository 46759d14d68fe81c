import Foundation
import ServiceModel

/// Labels and annotations with a meaning for the proxy.
enum WellKnown {
    /// Services carrying it (any value) belong to another proxy implementation.
    static let serviceProxyName = "service.kubernetes.io/service-proxy-name"
    /// Services carrying it (any value) are headless.
    static let headless = "service.kubernetes.io/headless"
    /// On an EndpointSlice: when the control plane saw the change it carries (RFC 3339).
    static let lastChangeTriggerTime = "endpoints.kubernetes.io/last-change-trigger-time"
    /// On an EndpointSlice: the Service it belongs to.
    static let serviceName = "kubernetes.io/service-name"
    /// Legacy spelling of `spec.loadBalancerSourceRanges`, used when the field is empty.
    static let loadBalancerSourceRangesAnnotation = "service.beta.kubernetes.io/load-balancer-source-ranges"
    /// Default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
    static let defaultAffinityTimeout: UInt32 = 10800
    /// Largest affinity timeout Kubernetes accepts (1 day).
    static let maxAffinityTimeout = 86400
}

/// What decoding one Service object produced.
enum DecodedService {
    /// A Service to serve; its ports have no endpoints yet.
    case served(Service)
    /// A valid Service the proxy does not serve, with the reason for the notice.
    case skipped(ServiceName, SkipReason)

    var name: ServiceName {
        switch self {
        case .served(let service): return service.name
        case .skipped(let name, _): return name
        }
    }
}

/// `spec.type` of a Service.
private enum ServiceType: String {
    case clusterIP = "ClusterIP"
    case nodePort = "NodePort"
    case loadBalancer = "LoadBalancer"
    case externalName = "ExternalName"
}

enum ServiceDecoder {
    /// Decodes a `v1 Service`. `root` is the object; `owner` of its fields already carries the
    /// namespace and name. `proxyName`: serve only Services whose service-proxy-name label
    /// has this value; nil: only Services without the label.
    static func decode(_ root: Field, name: ServiceName, proxyName: String? = nil) throws(InputError) -> DecodedService {
        let metadata = try root.field("metadata")
        let labels = try metadata.field("labels").stringMap()
        let spec = try root.field("spec")

        let typeText = try spec.field("type").optionalString() ?? ServiceType.clusterIP.rawValue
        guard let type = ServiceType(rawValue: typeText) else {
            throw try spec.field("type").fail(
                "unknown service type \(quoted(typeText)) (expected ClusterIP, NodePort, LoadBalancer or ExternalName)")
        }
        if type == .externalName {
            return .skipped(name, SkipReason(.externalNameService, field: "spec.type", "type ExternalName"))
        }
        if let value = labels[WellKnown.serviceProxyName] {
            try metadata.label(WellKnown.serviceProxyName).requireSyntax(value, .labelValue, what: "label value")
        }
        switch (labels[WellKnown.serviceProxyName], proxyName) {
        case (let value?, let ours) where value != ours:
            return .skipped(name, SkipReason(.serviceProxyName, field: labelPath(WellKnown.serviceProxyName),
                                             "label \(WellKnown.serviceProxyName)=\(value): served by another proxy"))
        case (nil, let ours?):
            return .skipped(name, SkipReason(.serviceProxyName, field: labelPath(WellKnown.serviceProxyName),
                                             "no label \(WellKnown.serviceProxyName)=\(ours): served by the default proxy"))
        default:
            break
        }
        if labels[WellKnown.headless] != nil {
            return .skipped(name, SkipReason(.headlessService, field: labelPath(WellKnown.headless),
                                             "label \(WellKnown.headless): headless"))
        }

        let clusterIPs: [IPAddress]
        switch try decodeClusterIPs(spec) {
        case .headless: return .skipped(name, SkipReason(.headlessService, field: "spec.clusterIP", "headless: clusterIP None"))
        case .unset: return .skipped(name, SkipReason(.noClusterIP, field: "spec.clusterIP", "no clusterIP"))
        case .addresses(let addresses): clusterIPs = addresses
        }

        let externallyAccessible = type == .nodePort || type == .loadBalancer
        let ports = try decodePorts(spec.field("ports"), type: type)

        let externalIPs = try addresses(spec.field("externalIPs"))
        var loadBalancerIPs: [IPAddress] = []
        for ingress in try root.field("status").field("loadBalancer").field("ingress").elements() {
            // ipMode Proxy: the load balancer proxies to the nodes itself; kube-proxy then does
            // not capture the IP on the node.
            if try ingress.field("ipMode").optionalString() == "Proxy" { continue }
            let ipField = try ingress.field("ip")
            guard let text = try ipField.optionalString(), !text.isEmpty else { continue }  // hostname only
            guard let address = IPAddress(text) else { throw ipField.fail(notAnIP(text)) }
            loadBalancerIPs.append(address)
        }

        var externalPolicy = try trafficPolicy(spec.field("externalTrafficPolicy"))
        if !(externallyAccessible || !externalIPs.isEmpty) {
            externalPolicy = .cluster  // as kube-proxy: only externally reachable services have one
        }
        let internalPolicy = try trafficPolicy(spec.field("internalTrafficPolicy"))

        // The API server allocates it for LoadBalancer Services with externalTrafficPolicy
        // Local and rejects it anywhere else.
        let healthCheckField = try spec.field("healthCheckNodePort")
        let healthCheckNodePort = try decodePort(healthCheckField, zeroMeansUnset: true)
        if let healthCheckNodePort, !(externallyAccessible && externalPolicy == .local) {
            let why = externallyAccessible ? "externalTrafficPolicy is Cluster" : "type is \(type.rawValue)"
            throw healthCheckField.fail("\(healthCheckNodePort) is set, but only Services of type LoadBalancer or NodePort with externalTrafficPolicy Local have a healthCheckNodePort (\(why))")
        }

        var affinityTimeout: UInt32?
        let affinityField = try spec.field("sessionAffinity")
        switch try affinityField.optionalString() ?? "None" {
        case "None":
            affinityTimeout = nil
        case "ClientIP":
            let timeoutField = try spec.field("sessionAffinityConfig").field("clientIP").field("timeoutSeconds")
            if let seconds = try timeoutField.optionalInt() {
                guard seconds >= 1, seconds <= WellKnown.maxAffinityTimeout else {
                    throw timeoutField.fail("\(seconds) is not a valid timeout (1-\(WellKnown.maxAffinityTimeout) seconds)")
                }
                affinityTimeout = UInt32(seconds)
            } else {
                affinityTimeout = WellKnown.defaultAffinityTimeout
            }
        case let other:
            throw affinityField.fail("unknown sessionAffinity \(quoted(other)) (expected None or ClientIP)")
        }

        var sourceRanges: [CIDR] = []
        for (text, field) in try spec.field("loadBalancerSourceRanges").stringElements() {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            guard let cidr = CIDR(trimmed) else { throw field.fail("\(quoted(text)) is not a valid CIDR") }
            sourceRanges.append(cidr)
        }
        if sourceRanges.isEmpty {
            let annotation = try metadata.field("annotations").field(WellKnown.loadBalancerSourceRangesAnnotation)
            let annotationField = Field(value: annotation.value,
                                        path: "metadata.annotations[\(quoted(WellKnown.loadBalancerSourceRangesAnnotation))]",
                                        owner: annotation.owner)
            for piece in (try annotationField.optionalString() ?? "").split(separator: ",") {
                let trimmed = piece.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty { continue }
                guard let cidr = CIDR(trimmed) else {
                    throw annotationField.fail("\(quoted(trimmed)) is not a valid CIDR")
                }
                sourceRanges.append(cidr)
            }
        }

        var service = Service(
            name: name, clusterIPs: clusterIPs, externalIPs: externalIPs, loadBalancerIPs: loadBalancerIPs,
            ports: ports, externalTrafficPolicy: externalPolicy, internalTrafficPolicy: internalPolicy,
            sessionAffinityTimeout: affinityTimeout, loadBalancerSourceRanges: sourceRanges)
        service.healthCheckNodePort = healthCheckNodePort
        return .served(service)
    }

    private enum ClusterIPs {
        case headless
        case unset
        case addresses([IPAddress])
    }

    /// `spec.clusterIPs` (authoritative when present) and `spec.clusterIP`, which must agree.
    private static func decodeClusterIPs(_ spec: Field) throws(InputError) -> ClusterIPs {
        let singleField = try spec.field("clusterIP")
        let single = try singleField.optionalString() ?? ""
        let list = try spec.field("clusterIPs").stringElements()

        guard let first = list.first else {
            if single == "None" { return .headless }
            if single.isEmpty { return .unset }
            guard let address = IPAddress(single) else { throw singleField.fail(notAnIP(single)) }
            return .addresses([address])
        }
        if !single.isEmpty {
            let agrees = single == first.text
                || (IPAddress(single) != nil && IPAddress(single) == IPAddress(first.text))
            guard agrees else {
                throw singleField.fail("\(quoted(single)) does not match spec.clusterIPs[0] \(quoted(first.text))")
            }
        }
        if first.text == "None" {
            guard list.count == 1 else {
                throw list[1].field.fail("a headless service (clusterIPs None) has no further cluster IPs")
            }
            return .headless
        }
        guard list.count <= 2 else {
            throw list[2].field.fail("at most two cluster IPs are allowed (one per family)")
        }
        var addresses: [IPAddress] = []
        for (text, field) in list {
            guard let address = IPAddress(text) else { throw field.fail(notAnIP(text)) }
            if let previous = addresses.first, previous.family == address.family {
                throw field.fail("\(quoted(text)) is \(address.family) like spec.clusterIPs[0]; dual-stack needs one of each family")
            }
            addresses.append(address)
        }
        return .addresses(addresses)
    }

    private static func decodePorts(_ portsField: Field, type: ServiceType) throws(InputError) -> [ServicePort] {
        var ports: [ServicePort] = []
        var seenNumbers: [String: String] = [:]    // "80/TCP" -> path of its first use
        var seenNames: [String: String] = [:]      // "http" -> path of its first use
        var seenNodePorts: [String: String] = [:]  // "30080/TCP" -> path of its first use
        let entries = try portsField.elements()
        for entry in entries {
            let nameField = try entry.field("name")
            let name = try nameField.optionalString() ?? ""
            // Endpoints are matched to service ports by name: each port of a Service with
            // several has one, unique among all its ports whatever the protocol.
            if name.isEmpty {
                if entries.count > 1 { throw nameField.fail("missing (every port of a Service with several ports has a name)") }
            } else {
                try nameField.requireSyntax(name, .dns1123Label, what: "port name")
                if let first = seenNames[name] {
                    throw nameField.fail("duplicate port name \(quoted(name)) (also \(first))")
                }
                seenNames[name] = entry.path
            }
            let transport = try decodeProtocol(entry.field("protocol"))
            let portField = try entry.field("port")
            guard let port = try decodePort(portField) else { throw portField.fail("missing") }
            try validateTargetPort(entry.field("targetPort"))
            let nodePortField = try entry.field("nodePort")
            let nodePort = try decodePort(nodePortField, zeroMeansUnset: true)

            let numberKey = "\(port)/\(transport.rawValue.uppercased())"
            if let first = seenNumbers[numberKey] {
                throw entry.fail("duplicate port \(numberKey) (also \(first))")
            }
            seenNumbers[numberKey] = entry.path
            if let nodePort {
                // Only NodePort and LoadBalancer Services have NodePorts.
                guard type == .nodePort || type == .loadBalancer else {
                    throw nodePortField.fail("\(nodePort) is set, but only Services of type NodePort or LoadBalancer have a nodePort (type is \(type.rawValue))")
                }
                let nodePortKey = "\(nodePort)/\(transport.rawValue.uppercased())"
                if let first = seenNodePorts[nodePortKey] {
                    throw nodePortField.fail("duplicate nodePort \(nodePortKey) (also \(first))")
                }
                seenNodePorts[nodePortKey] = entry.path
            }

            ports.append(ServicePort(name: name, transport: transport, port: port, nodePort: nodePort))
        }
        return ports
    }

    /// `targetPort` is not needed (EndpointSlice ports carry the resolved number), but must be
    /// a valid port number or IANA service name as Kubernetes requires.
    private static func validateTargetPort(_ field: Field) throws(InputError) {
        switch field.value {
        case nil, .null?:
            return
        case .int?:
            _ = try decodePort(field, zeroMeansUnset: true)
        case .string(let text)?:
            guard isValidPortName(text) else {
                throw field.fail("\(quoted(text)) is not a valid port name (1-15 lowercase letters, digits and '-', with at least one letter)")
            }
        case let other?:
            throw field.fail("expected a port number or name, found \(other.kindDescription)")
        }
    }
}

// MARK: - Shared field decoders

/// `"x" is not a valid IP address`.
func notAnIP(_ text: String) -> String { "\(quoted(text)) is not a valid IP address" }

/// A port number 1-65535, or nil if absent (or 0 when `zeroMeansUnset`, as for nodePort and
/// targetPort, where Kubernetes reads 0 as "not set").
func decodePort(_ field: Field, zeroMeansUnset: Bool = false) throws(InputError) -> UInt16? {
    guard let value = try field.optionalInt() else { return nil }
    if value == 0 && zeroMeansUnset { return nil }
    guard value >= 1, value <= 65535 else { throw field.fail("\(value) is not a valid port (1-65535)") }
    return UInt16(value)
}

/// `protocol`: TCP (default), UDP or SCTP, spelled as Kubernetes does.
func decodeProtocol(_ field: Field) throws(InputError) -> TransportProtocol {
    let text = try field.optionalString() ?? "TCP"
    switch text {
    case "TCP": return .tcp
    case "UDP": return .udp
    case "SCTP": return .sctp
    default: throw field.fail("unknown protocol \(quoted(text)) (expected TCP, UDP or SCTP)")
    }
}

/// `Cluster` (default) or `Local`.
func trafficPolicy(_ field: Field) throws(InputError) -> TrafficPolicy {
    let text = try field.optionalString() ?? "Cluster"
    guard let policy = TrafficPolicy(rawValue: text) else {
        let name = field.path.split(separator: ".").last.map(String.init) ?? field.path
        throw field.fail("unknown \(name) \(quoted(text)) (expected Cluster or Local)")
    }
    return policy
}

/// A list of IP address strings.
func addresses(_ field: Field) throws(InputError) -> [IPAddress] {
    var out: [IPAddress] = []
    for (text, element) in try field.stringElements() {
        guard let address = IPAddress(text) else { throw element.fail(notAnIP(text)) }
        out.append(address)
    }
    return out
}

/// An IANA_SVC_NAME: 1-15 characters of a-z, 0-9 and '-', at least one letter, no leading,
/// trailing or doubled '-'.
func isValidPortName(_ text: String) -> Bool {
    guard (1...15).contains(text.count), !text.hasPrefix("-"), !text.hasSuffix("-"),
          !text.contains("--") else { return false }
    var hasLetter = false
    for scalar in text.unicodeScalars {
        switch scalar {
        case "a"..."z": hasLetter = true
        case "0"..."9", "-": break
        default: return false
        }
    }
    return hasLetter
}
