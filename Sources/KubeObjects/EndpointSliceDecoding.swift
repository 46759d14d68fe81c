import Foundation
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
    /// `endpoints.kubernetes.io/last-change-trigger-time`: when the control plane saw the
    /// change this version of the slice carries (nil when absent or not a timestamp).
    var lastChangeTriggerTime: Date? = nil
}

/// What decoding one EndpointSlice object produced.
enum DecodedEndpointSlice {
    case slice(EndpointSlice)
    /// A valid slice the proxy cannot use, with the reason for the notice.
    case skipped(SkipReason)
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
        case "FQDN"?: return .skipped(SkipReason(.fqdnEndpointSlice, field: "addressType", "addressType FQDN"))
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
        members.reserveCapacity(endpointEntries.count)
        for entry in endpointEntries {
            if let member = plainEndpoint(entry.value, family: family) {
                members.append(member)
                continue
            }
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
            return .skipped(SkipReason(.endpointSliceWithoutService, field: labelPath(WellKnown.serviceName),
                                       "no \(WellKnown.serviceName) label"))
        }
        try root.field("metadata").label(WellKnown.serviceName).requireSyntax(serviceName, .labelValue, what: "label value")
        return .slice(EndpointSlice(
            namespace: namespace, name: name, service: ServiceName(namespace: namespace, name: serviceName),
            family: family, ports: ports, endpoints: members,
            lastChangeTriggerTime: triggerTime(try? root.field("metadata").field("annotations")
                .field(WellKnown.lastChangeTriggerTime).optionalString())))
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

/// An RFC 3339 timestamp (`2026-12-01T15:07:00Z`, with optional fractional seconds and a
/// `Z` or `±hh:mm` offset); nil for anything else, as kube-proxy ignores a trigger time it
/// cannot read. Read by hand: a date formatter per slice would cost more than the slice.
func triggerTime(_ text: String??) -> Date? {
    guard let text = text ?? nil else { return nil }
    let bytes = Array(text.utf8)
    func number(_ range: Range<Int>) -> Int? {
        guard range.upperBound <= bytes.count else { return nil }
        var value = 0
        for byte in bytes[range] {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }
    guard bytes.count >= 20, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
          bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t"),
          bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
          let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
          let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
          (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
    var index = 19
    var fraction = 0.0
    if bytes[index] == UInt8(ascii: ".") {
        index += 1
        var scale = 0.1
        let start = index
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
            fraction += Double(bytes[index] - UInt8(ascii: "0")) * scale
            scale /= 10
            index += 1
        }
        guard index > start else { return nil }
    }
    var offset = 0
    if index < bytes.count, bytes[index] == UInt8(ascii: "Z") || bytes[index] == UInt8(ascii: "z") {
        index += 1
    } else if index + 6 == bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-"),
              bytes[index + 3] == UInt8(ascii: ":"), let hours = number(index + 1..<index + 3),
              let minutes = number(index + 4..<index + 6) {
        offset = (bytes[index] == UInt8(ascii: "+") ? 1 : -1) * (hours * 3600 + minutes * 60)
        index += 6
    } else {
        return nil
    }
    guard index == bytes.count else { return nil }
    // Days since 1970-01-01 of a proleptic Gregorian date.
    let shifted = month <= 2 ? year - 1 : year
    let era = (shifted >= 0 ? shifted : shifted - 399) / 400
    let yearOfEra = shifted - era * 400
    let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    let days = era * 146097 + dayOfEra - 719468
    let seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    return Date(timeIntervalSince1970: Double(seconds) + fraction)
}

/// nil for nil or "".
private func nonEmpty(_ text: String?) -> String? {
    guard let text, !text.isEmpty else { return nil }
    return text
}
