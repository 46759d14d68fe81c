import ServiceModel

/// The common shape of an `endpoints[]` entry read straight from its ``Value``, without the
/// ``Field`` paths that only error messages need: an object whose `addresses` are 1 to
/// ``KubernetesLimits/addressesPerEndpoint`` valid addresses of `family`, whose `conditions`
/// are absent, null or an object of booleans (or nulls), whose `nodeName` and `zone` are
/// strings (or absent, or null) and which has no `hints`.
///
/// A slice of 10,000 services has 100,000 such entries, and building a path string for each
/// field of each (`endpoints[7].conditions.serving`) cost more than reading the fields. Any
/// entry of another shape gives nil, and ``EndpointSliceDecoder`` then reads it field by field
/// with the full checks: the outcome, and every error message, is the same either way.
func plainEndpoint(_ entry: Value?, family: IPFamily) -> EndpointSlice.Member? {
    guard case .map(let members)? = entry,
          case .list(let addressValues)? = members["addresses"],
          !addressValues.isEmpty, addressValues.count <= KubernetesLimits.addressesPerEndpoint
    else { return nil }
    var first: IPAddress?
    for value in addressValues {
        guard case .string(let text) = value, let address = IPAddress(text), address.family == family else { return nil }
        if first == nil { first = address }
    }
    guard let address = first else { return nil }

    var ready: Bool?, serving: Bool?, terminating: Bool?
    switch members["conditions"] {
    case nil, .null?:
        break
    case .map(let conditions)?:
        guard let readyValue = plainBool(conditions["ready"]),
              let servingValue = plainBool(conditions["serving"]),
              let terminatingValue = plainBool(conditions["terminating"]) else { return nil }
        (ready, serving, terminating) = (readyValue, servingValue, terminatingValue)
    default:
        return nil
    }
    switch members["hints"] {
    case nil, .null?: break
    default: return nil
    }
    guard let nodeName = plainString(members["nodeName"]), let zone = plainString(members["zone"]) else { return nil }
    let isReady = ready ?? true
    return EndpointSlice.Member(
        address: address, ready: isReady, serving: serving ?? isReady, terminating: terminating ?? false,
        nodeName: nodeName.isEmpty ? nil : nodeName, zone: zone.isEmpty ? nil : zone)
}

/// A boolean or its absence (`.some(nil)`); nil for any other value.
private func plainBool(_ value: Value?) -> Bool?? {
    switch value {
    case nil, .null?: return .some(nil)
    case .bool(let flag)?: return .some(flag)
    default: return nil
    }
}

/// A string, "" when absent or null; nil for any other value.
private func plainString(_ value: Value?) -> String? {
    switch value {
    case nil, .null?: return ""
    case .string(let text)?: return text
    default: return nil
    }
}
