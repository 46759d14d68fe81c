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

        let portsField = try root.field("ports")
        let portEntries = try portsField.elements()
        try portsField.requireCount(portEntries.count, atMost: KubernetesLimits.portsPerSlice, of: "ports", in: "an EndpointSlice")
        var ports: [EndpointSlice.Port] = []
        var seenNames: [String: String] = [:]  // name -> path of its first use
        for entry in portEntries {
            let nameField = try entry.field("name")
            let name = try nameField.optionalString() ?? ""
            if !name.isEmpty { try nameField.requireSyntax(name, .dns1123Label, what: "port name") }
            if let first = seenNames[name] {
                throw nameField.fail("duplicate port name \(quoted(name)) (also \(first))")
            }
            seenNames[name] = entry.path
            ports.append(EndpointSlice.Port(
                name: name,
                transport: try decodeProtocol(entry.field("protocol")),
                port: try decodePort(entry.field("port"))))
        }

        let endpointsField = try root.field("endpoints")
        let endpointEntries = try endpointsField.elements()
        try endpointsField.requireCount(endpointEntries.count, atMost: KubernetesLimits.endpointsPerSlice,
                                        of: "endpoints", in: "an EndpointSlice")
        var members: [EndpointSlice.Member] = []
        for entry in endpointEntries {
            let addressesField = try entry.field("addresses")
            let addressEntries = try addressesField.stringElements()
            try addressesField.requireCount(addressEntries.count, atMost: KubernetesLimits.addressesPerEndpoint,
                                            of: "addresses", in: "an endpoint")
            var addresses: [IPAddress] = []
            for (text, field) in addressEntries {
                guard let address = IPAddress(text) else { throw field.fail(notAnIP(text)) }
                guard address.family == family else {
                    throw field.fail("\(quoted(text)) is not an \(family) address (addressType is \(family))")
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
        try root.field("metadata").label(WellKnown.serviceName).requireSyntax(serviceName, .labelValue, what: "label value")
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
