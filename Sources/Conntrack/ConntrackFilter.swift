import ServiceModel

/// Which conntrack entries to delete: those of ``family`` and ``transport`` whose
/// tuples match every field that is set. A nil field is a wildcard.
///
/// Typical filters, as kube-proxy uses them when an endpoint goes away:
///
/// ```swift
/// // A ClusterIP (or external/LoadBalancer IP) flow DNATed to the endpoint that is gone:
/// ConntrackFilter(family: .v4, transport: .udp,
///                 originalDestination: clusterIP, originalDestinationPort: 53,
///                 replySource: endpoint, replySourcePort: 5353)
/// // NodePort traffic to that endpoint, whatever local address the client used:
/// ConntrackFilter(family: .v4, transport: .udp, originalDestinationPort: 30053,
///                 replySource: endpoint, replySourcePort: 5353, requireDestinationNAT: true)
/// ```
///
/// A filter whose addresses are not of its ``family`` matches nothing.
public struct ConntrackFilter: Hashable, Sendable, CustomStringConvertible {
    /// The address family of the entries.
    public var family: IPFamily
    /// The transport protocol of the entries.
    public var transport: TransportProtocol
    /// The address the client sent to (`original.destination`), e.g. a ClusterIP.
    public var originalDestination: IPAddress?
    /// The port the client sent to (`original.destinationPort`), e.g. the service port or NodePort.
    public var originalDestinationPort: UInt16?
    /// The address answers come from (`reply.source`): after DNAT, the endpoint.
    public var replySource: IPAddress?
    /// The port answers come from (`reply.sourcePort`): after DNAT, the endpoint's port.
    public var replySourcePort: UInt16?
    /// NodePort traffic: the original destination is any local address, so match the
    /// port only and require DNAT status (`IPS_DST_NAT`), which leaves alone flows to
    /// the node itself that happen to use the same port.
    public var requireDestinationNAT: Bool

    public init(
        family: IPFamily,
        transport: TransportProtocol,
        originalDestination: IPAddress? = nil,
        originalDestinationPort: UInt16? = nil,
        replySource: IPAddress? = nil,
        replySourcePort: UInt16? = nil,
        requireDestinationNAT: Bool = false
    ) {
        self.family = family
        self.transport = transport
        self.originalDestination = originalDestination
        self.originalDestinationPort = originalDestinationPort
        self.replySource = replySource
        self.replySourcePort = replySourcePort
        self.requireDestinationNAT = requireDestinationNAT
    }

    /// Whether `flow` matches this filter.
    public func matches(_ flow: ConntrackFlow) -> Bool {
        flow.family == family && flow.transport == transport
            && (originalDestination.map { $0 == flow.original.destination } ?? true)
            && (originalDestinationPort.map { $0 == flow.original.destinationPort } ?? true)
            && (replySource.map { $0 == flow.reply.source } ?? true)
            && (replySourcePort.map { $0 == flow.reply.sourcePort } ?? true)
            && (!requireDestinationNAT || flow.isDestinationNAT)
    }

    /// `udp IPv4 original destination 198.18.0.10:53, reply source 198.19.1.11:5353, dnat`
    /// (`*` for a wildcard).
    public var description: String {
        func address(_ address: IPAddress?) -> String { address.map { "\($0)" } ?? "*" }
        func port(_ port: UInt16?) -> String { port.map(String.init) ?? "*" }
        func endpoint(_ a: IPAddress?, _ p: UInt16?) -> String {
            family == .v6 && a != nil ? "[\(address(a))]:\(port(p))" : "\(address(a)):\(port(p))"
        }
        var text = "\(transport) \(family) original destination \(endpoint(originalDestination, originalDestinationPort))"
            + ", reply source \(endpoint(replySource, replySourcePort))"
        if requireDestinationNAT { text += ", dnat" }
        return text
    }
}

/// Many filters of one family, indexed so that matching a flow costs a few hash
/// lookups however many filters there are.
///
/// Filters are grouped by shape: which of the four optional fields they set, and
/// whether they require DNAT. There are at most 32 shapes; within a shape, a flow
/// matches a filter exactly when the flow's values of the shape's fields, with its
/// transport, equal the filter's. So a flow is matched with one set lookup per shape
/// present, and the whole table in time linear in its size.
struct ConntrackFilterIndex {
    /// The values a shape compares; fields outside the shape stay nil.
    struct Key: Hashable {
        var transport: TransportProtocol
        var originalDestination: IPAddress?
        var originalDestinationPort: UInt16?
        var replySource: IPAddress?
        var replySourcePort: UInt16?
    }

    /// Which fields a filter sets, as bits.
    struct Shape: Hashable {
        static let originalDestination: UInt8 = 1
        static let originalDestinationPort: UInt8 = 2
        static let replySource: UInt8 = 4
        static let replySourcePort: UInt8 = 8
        static let destinationNAT: UInt8 = 16

        var bits: UInt8

        init(_ filter: ConntrackFilter) {
            bits = 0
            if filter.originalDestination != nil { bits |= Self.originalDestination }
            if filter.originalDestinationPort != nil { bits |= Self.originalDestinationPort }
            if filter.replySource != nil { bits |= Self.replySource }
            if filter.replySourcePort != nil { bits |= Self.replySourcePort }
            if filter.requireDestinationNAT { bits |= Self.destinationNAT }
        }

        func has(_ bit: UInt8) -> Bool { bits & bit != 0 }

        /// The key of `flow` under this shape.
        func key(_ flow: ConntrackFlow) -> Key {
            Key(
                transport: flow.transport,
                originalDestination: has(Self.originalDestination) ? flow.original.destination : nil,
                originalDestinationPort: has(Self.originalDestinationPort) ? flow.original.destinationPort : nil,
                replySource: has(Self.replySource) ? flow.reply.source : nil,
                replySourcePort: has(Self.replySourcePort) ? flow.reply.sourcePort : nil)
        }
    }

    /// The family all filters (and matched flows) are of.
    let family: IPFamily

    /// Filter keys by shape.
    private(set) var shapes: [(shape: Shape, keys: Set<Key>)] = []

    /// The transports the filters name.
    private(set) var transports: Set<TransportProtocol> = []

    /// Indexes the filters of `family` among `filters`; filters of the other family,
    /// and those whose addresses are not of `family`, are left out.
    init(family: IPFamily, filters: some Sequence<ConntrackFilter>) {
        self.family = family
        var byShape: [Shape: Set<Key>] = [:]
        for filter in filters where filter.family == family {
            if let address = filter.originalDestination, address.family != family { continue }
            if let address = filter.replySource, address.family != family { continue }
            let key = Key(
                transport: filter.transport,
                originalDestination: filter.originalDestination,
                originalDestinationPort: filter.originalDestinationPort,
                replySource: filter.replySource,
                replySourcePort: filter.replySourcePort)
            byShape[Shape(filter), default: []].insert(key)
            transports.insert(filter.transport)
        }
        shapes = byShape.map { (shape: $0.key, keys: $0.value) }.sorted { $0.shape.bits < $1.shape.bits }
    }

    /// Whether no filter was indexed.
    var isEmpty: Bool { shapes.isEmpty }

    /// Whether `flow` matches at least one of the filters.
    func matches(_ flow: ConntrackFlow) -> Bool {
        guard flow.family == family, transports.contains(flow.transport) else { return false }
        for (shape, keys) in shapes {
            if shape.has(Shape.destinationNAT), !flow.isDestinationNAT { continue }
            if keys.contains(shape.key(flow)) { return true }
        }
        return false
    }
}
