/// The limits the Kubernetes API server applies to the objects nftproxy reads, so that
/// nftproxy refuses what the API server would refuse, and no single object can make it build
/// an unbounded number of set elements. docs/validation.md lists them in prose.
enum KubernetesLimits {
    /// Entries of `endpoints` in one EndpointSlice.
    static let endpointsPerSlice = 1000
    /// Entries of `ports` in one EndpointSlice.
    static let portsPerSlice = 100
    /// Entries of `endpoints[].addresses` of one endpoint.
    static let addressesPerEndpoint = 100
}

/// The name syntaxes of Kubernetes, with the wording used in messages.
enum NameSyntax {
    /// Service names: 1-63 characters of a-z, 0-9 and '-', starting with a letter and ending
    /// with a letter or digit.
    case dns1035Label
    /// Namespaces and port names: as a DNS-1035 label, but it may also start with a digit.
    case dns1123Label
    /// EndpointSlice names: at most 253 characters, DNS-1123 labels joined by '.'.
    case dns1123Subdomain
    /// Label values: at most 63 characters of a-z, A-Z, 0-9, '-', '_' and '.', starting and
    /// ending with a letter or digit; may be empty.
    case labelValue

    /// Whether `text` has this syntax.
    func accepts(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        switch self {
        case .dns1035Label:
            return NameSyntax.isLabel(bytes[...]) && bytes.first.map(isLowercaseLetter) == true
        case .dns1123Label:
            return NameSyntax.isLabel(bytes[...])
        case .dns1123Subdomain:
            guard !bytes.isEmpty, bytes.count <= 253 else { return false }
            return bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
                .allSatisfy { NameSyntax.isLabel($0, maxLength: 253) }
        case .labelValue:
            guard bytes.count <= 63 else { return false }
            guard let first = bytes.first, let last = bytes.last else { return true }
            return isAlphanumeric(first) && isAlphanumeric(last)
                && bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
        }
    }

    /// How the syntax is described after "is not a valid ...".
    var explanation: String {
        switch self {
        case .dns1035Label:
            return "at most 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit"
        case .dns1123Label:
            return "at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
        case .dns1123Subdomain:
            return "at most 253 characters: dot-separated parts of lowercase letters, digits and '-', each starting and ending with a letter or digit"
        case .labelValue:
            return "at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        }
    }

    /// A DNS-1123 label: lowercase alphanumerics and '-', alphanumeric at both ends.
    private static func isLabel(_ bytes: ArraySlice<UInt8>, maxLength: Int = 63) -> Bool {
        guard let first = bytes.first, let last = bytes.last, bytes.count <= maxLength else { return false }
        func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
            isLowercaseLetter(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }
        return isLowerAlphanumeric(first) && isLowerAlphanumeric(last)
            && bytes.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") }
    }
}

private func isLowercaseLetter(_ byte: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) }

private func isAlphanumeric(_ byte: UInt8) -> Bool {
    isLowercaseLetter(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
        || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
}

extension Field {
    /// The label `key` of this `metadata` field, with the path `metadata.labels["key"]`.
    func label(_ key: String) throws(InputError) -> Field {
        let labels = try field("labels")
        let value: Value? = if case .map(let members)? = labels.value { members[key] } else { nil }
        return Field(value: value, quotedKey: key, in: labels)
    }

    /// Refuses a string that lacks `syntax`: `"Web" is not a valid Service name (...)`.
    func requireSyntax(_ text: String, _ syntax: NameSyntax, what: String) throws(InputError) {
        guard syntax.accepts(text) else {
            throw fail("\(quoted(text)) is not a valid \(what) (\(syntax.explanation))")
        }
    }

    /// Refuses a list longer than `limit`: `1001 endpoints; an EndpointSlice holds at most 1000`.
    func requireCount(_ count: Int, atMost limit: Int, of what: String, in holder: String) throws(InputError) {
        guard count <= limit else {
            throw fail("\(count) \(what); \(holder) holds at most \(limit)")
        }
    }
}
