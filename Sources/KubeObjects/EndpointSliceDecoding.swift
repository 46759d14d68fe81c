import ServiceModel

/// One `discovery.k8s.io/v1 EndpointSlice`, reduced to what the proxy uses.
struct EndpointSlice: Sendable {
    /// One entry of `ports[]`.
    struct Port: Sendable {
        var name: String
        var transport: TransportProtocol
        /// nil when the slice names the port without a number: no usable port for that name.
        var port: UInt16?
    }

    /// One entry of `endpoints[]`, with the condition defaults applied.
    struct Member: Sendable {
        var address: IPAddress
        var ready: Bool
        var serving: Bool
        var terminating: Bool
        var nodeName: String?
        var zone: String?
        var zoneHints: [String] = []
        var nodeHints: [String] = []
    }

    var namespace: String
    var name: String
    /// From the `kubernetes.io/service-name` label, in the slice's namespace.
    var service: ServiceName
    var family: IPFamily
    var ports: [Port]
    var endpoints: [Member]
}

/// What decoding one EndpointSlice object produced.
enum DecodedEndpointSlice {
    case slice(EndpointSlice)
    /// A valid slice the proxy cannot use, with the reason for the notice.
    case skipped(reason: String)
}

enum EndpointSliceDecoder {
    static func decode(_ root: Field, namespace: String, name: String) throws(InputError) -> DecodedEndpointSlice {
        let labels = try root.field("metadata").field("labels").stringMap()

        let typeField = try root.field("addressType")
        let family: IPFamily
        switch try typeField.optionalString() {
        case nil: throw typeField.fail("missing")
        case "IPv4"?: family = .v4
        case "IPv6"?: family = .v6
        case "FQDN"?: return .skipped(reason: "addressType FQDN")
        case let other?:
            throw typeField.fail("unknown addressType \(quoted(other)) (expected IPv4, IPv6 or FQDN)")
        }

        var ports: [EndpointSlice.Port] = []
        for entry in try root.field("ports").elements() {
            ports.append(EndpointSlice.Port(
                name: try entry.field("name").optionalString() ?? "",
                transport: try decodeProtocol(entry.field("protocol")),
                port: try decodePort(entry.field("port"))))
        }

        var members: [EndpointSlice.Member] = []
        for entry in try root.field("endpoints").elements() {
            let addressesField = try entry.field("addresses")
            var addresses: [IPAddress] = []
            for (text, field) in try addressesField.stringElements() {
                guard let address = IPAddress(text) else { throw field.fail(notAnIP(text)) }
                guard address.family == family else {
                    throw field.fail("\(address) is not an \(family) address (addressType is \(family))")
                }
                addresses.append(address)
            }
            // kube-proxy uses the first address; Kubernetes requires at least one.
            guard let address = addresses.first else {
                throw addressesField.fail("an endpoint needs at least one address")
            }
            let conditions = try entry.field("conditions")
            let ready = try conditions.field("ready").optionalBool() ?? true
            let serving = try conditions.field("serving").optionalBool() ?? ready
            let terminating = try conditions.field("terminating").optionalBool() ?? false
            members.append(EndpointSlice.Member(
                address: address, ready: ready, serving: serving, terminating: terminating,
                nodeName: nonEmpty(try entry.field("nodeName").optionalString()),
                zone: nonEmpty(try entry.field("zone").optionalString()),
                zoneHints: try hintNames(entry.field("hints").field("forZones")),
                nodeHints: try hintNames(entry.field("hints").field("forNodes"))))
        }

        guard let serviceName = labels[WellKnown.serviceName], !serviceName.isEmpty else {
            return .skipped(reason: "no \(WellKnown.serviceName) label")
        }
        return .slice(EndpointSlice(
            namespace: namespace, name: name, service: ServiceName(namespace: namespace, name: serviceName),
            family: family, ports: ports, endpoints: members))
    }
}

/// The `name`s of a hints list (`forZones` or `forNodes`); empty names are left out.
private func hintNames(_ list: Field) throws(InputError) -> [String] {
    var names: [String] = []
    for hint in try list.elements() {
        if let name = nonEmpty(try hint.field("name").optionalString()) { names.append(name) }
    }
    return names
}

/// nil for nil or "".
private func nonEmpty(_ text: String?) -> String? {
    guard let text, !text.isEmpty else { return nil }
    return text
}
