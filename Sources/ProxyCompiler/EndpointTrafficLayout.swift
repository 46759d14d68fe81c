import Nftables
import ServiceModel

/// Per-endpoint packet and byte counters, both directions, in two named sets with
/// per-element counters (docs/ruleset.md, "Endpoint counters").
///
/// Every flow the NAT chains sent to an endpoint carries `ct status dnat`, and conntrack
/// keeps its frontend (the original tuple's destination) and its endpoint (the reply
/// tuple's source) on every packet of it, whichever way the packet goes. So one chain,
/// jumped to from the filter hooks for such packets, looks
/// `frontend . protocol . port . endpoint . port` up in `endpoint-traffic` (NodePorts:
/// `protocol . port . endpoint . port` in `nodeport-endpoint-traffic`, since their
/// frontend address is any of the node's), and the lookup adds the packet to the matched
/// element's counter. The elements are the frontends' endpoints, added and removed with
/// them; their comments name the service, port and endpoint node, so that `nftproxy stats`
/// needs nothing but the kernel.
public enum EndpointTrafficLayout {
    /// `frontend . protocol . port . endpoint . port` for ClusterIPs, externalIPs and LB IPs.
    public static let serviceSet = "endpoint-traffic"
    /// `protocol . NodePort . endpoint . port`.
    public static let nodePortSet = "nodeport-endpoint-traffic"
    /// The chain the filter hooks jump to for DNATed packets.
    public static let countChain = "count-endpoint-traffic"
    /// Protocols a frontend can have, each with its own lookup rule (nft types a `ct` port
    /// only once a rule has fixed the protocol; a set of protocols would be anonymous).
    static let transports: [TransportProtocol] = [.tcp, .udp, .sctp]

    /// The key of `endpoint-traffic`, read from the packet's connection.
    public static func serviceKey(_ family: TableFamily) -> [Selector] {
        [.ctAddress(.destination, .original, family)] + nodePortKey(family)
    }

    /// The key of `nodeport-endpoint-traffic`, read from the packet's connection.
    public static func nodePortKey(_ family: TableFamily) -> [Selector] {
        [.l4proto, .ctPort(.destination, .original), .ctAddress(.source, .reply, family), .ctPort(.source, .reply)]
    }

    /// Declarations of both sets (with `counter`); `sized` declares one with its elements.
    static func sets(_ family: TableFamily, sized: (String, SetFields) -> NamedSet) -> [NamedSet] {
        let address = family.addressType
        return [(serviceSet, [address, .inetProto, .inetService, address, .inetService]),
                (nodePortSet, [.inetProto, .inetService, address, .inetService])].map { name, types in
            var set = sized(name, .types(types))
            set.counter = true
            return set
        }
    }

    /// The counting chain: one lookup per set and protocol; a match returns.
    static func countChain(_ family: TableFamily) -> Chain {
        var rules: [Rule] = []
        for transport in transports {
            let proto = Statement.compare(.l4proto, negated: false, .proto(transport.number))
            rules.append(Rule([proto, .lookup(serviceKey(family), set: serviceSet), .verdict(.return)]))
            rules.append(Rule([proto, .lookup(nodePortKey(family), set: nodePortSet), .verdict(.return)]))
        }
        return Chain(name: countChain, rules: rules)
    }

    /// The rule of a filter base chain that sends DNATed packets to the counting chain.
    /// On input, packets from the node's own addresses are left out: they came through
    /// loopback and were counted on output already.
    static func jumpRule(hook: BaseChain.Hook) -> Rule {
        var statements: [Statement] = [.bitTest(.ctStatus, mask: CtStatusFlag.destinationNAT, isSet: true)]
        if hook == .input {
            statements.append(.compare(.fibSourceType, negated: true, .integer(FibAddressType.local)))
        }
        return Rule(statements + [.verdict(.jump(countChain))])
    }

    /// The set a frontend's elements go to.
    static func set(for frontend: Frontend) -> String { frontend.kind == .nodePort ? nodePortSet : serviceSet }

    /// The endpoints a frontend can send a flow to: the cluster-wide list and the node's own
    /// (traffic policies Local), each (address, port) once, in order. A ClusterIP with
    /// internalTrafficPolicy Local only reaches the node's own (none: it drops). These are
    /// exactly the endpoints of the frontend's elements in the backends maps, from which a
    /// read-back derives this set's keys (`DerivedKeys.pairKeys`).
    static func endpoints(of frontend: Frontend) -> [Endpoint] {
        if frontend.kind == .clusterIP, let local = frontend.local { return local }
        guard let local = frontend.local, !local.isEmpty else { return frontend.endpoints }
        var seen = Set(frontend.endpoints.map { EndpointTarget(address: $0.address, port: $0.port) })
        return frontend.endpoints + local.filter { seen.insert(EndpointTarget(address: $0.address, port: $0.port)).inserted }
    }

    /// The elements of one frontend: one per endpoint, commented with its names.
    static func elements(for frontend: Frontend, node: NodeConfig) -> [SetElement] {
        let front: [Value] = frontend.kind == .nodePort ? [] : frontend.address.map { [.address($0)] } ?? []
        let key = front + [.proto(frontend.transport.number), .port(frontend.port)]
        return endpoints(of: frontend).map { endpoint in
            let names = EndpointNames(service: frontend.service, portName: frontend.portName,
                                      node: endpoint.nodeName,
                                      local: node.nodeName != nil && endpoint.nodeName == node.nodeName)
            return SetElement(key: key + [.address(endpoint.address), .port(endpoint.port)]).commented(names.comment)
        }
    }
}

/// An endpoint's address and port: what the kernel counts by.
struct EndpointTarget: Hashable {
    var address: IPAddress
    var port: UInt16
}

/// What an endpoint's counters are labelled with, kept in the kernel as the comment of
/// its `endpoint-traffic` element: `namespace/name port node local|remote`, `-` for an
/// unnamed port or an unknown node. Kubernetes names hold no spaces or quotes.
public struct EndpointNames: Hashable, Sendable {
    public var service: ServiceName
    /// The service port's name; "" for the single unnamed port.
    public var portName: String
    public var node: String?
    /// Whether the endpoint runs on the node that counted it.
    public var local: Bool

    public init(service: ServiceName, portName: String, node: String?, local: Bool) {
        self.service = service; self.portName = portName; self.node = node; self.local = local
    }

    /// The element comment (nft keeps at most 253 bytes; a node name is cut to fit).
    public var comment: String {
        let head = "\(service) \(portName.isEmpty ? "-" : portName) "
        let tail = local ? " local" : " remote"
        let room = max(1, SetElement.maximumCommentBytes - head.utf8.count - tail.utf8.count)
        return head + String((node ?? "-").prefix(room)) + tail
    }

    /// Reads a comment written by ``comment``; nil for any other text.
    public init?(comment: String) {
        let fields = comment.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 4, let slash = fields[0].firstIndex(of: "/"),
              fields[3] == "local" || fields[3] == "remote" else { return nil }
        let namespace = String(fields[0][..<slash]), name = String(fields[0][fields[0].index(after: slash)...])
        guard !namespace.isEmpty, !name.isEmpty, !fields[1].isEmpty, !fields[2].isEmpty else { return nil }
        self.init(service: ServiceName(namespace: namespace, name: name),
                  portName: fields[1] == "-" ? "" : String(fields[1]),
                  node: fields[2] == "-" ? nil : String(fields[2]), local: fields[3] == "local")
    }
}
