import Nftables
import ServiceModel

/// Per-endpoint counters of connections, packets and bytes (both directions), kept by the
/// kernel in four dynamic sets with per-element counters (docs/ruleset.md, "Endpoint counters").
///
/// Every flow the NAT chains sent to an endpoint carries `ct status dnat`, and conntrack
/// keeps its frontend (the original tuple's destination) and its endpoint (the reply
/// tuple's source) on every packet of it, whichever way the packet goes. One chain, jumped
/// to from the filter hooks for such packets, counts by the pair
/// `frontend . protocol . port . endpoint . port` (NodePorts: `protocol . port . endpoint
/// . port`, since their frontend address is any of the node's):
///
/// - the first packet of a connection (its conntrack entry not yet confirmed) whose
///   frontend is one of ours (in `counted-frontends` or `counted-nodeports`, copies of the
///   keys of `service-ips` and `service-nodeports`) makes or updates
///   the pair's element in `endpoint-connections` (one count per connection) and in
///   `endpoint-traffic` (its first packet);
/// - every later packet is looked up in `endpoint-traffic`, which counts it if the pair
///   has an element.
///
/// So no element is written when services are programmed: the packet path creates one per
/// pair that carries traffic, and the sync retires the elements of pairs that left the
/// backends maps (``DerivedKeys/retirements(from:to:removed:)``). Element comments name
/// each frontend's service and port (in `service-ips` and `service-nodeports`) and each
/// endpoint's node (in the backends maps), so that `nftproxy stats` needs nothing but the kernel.
public enum EndpointTrafficLayout {
    /// Packets and bytes: `frontend . protocol . port . endpoint . port` for ClusterIPs,
    /// externalIPs and LB IPs.
    public static let serviceSet = "endpoint-traffic"
    /// Packets and bytes: `protocol . NodePort . endpoint . port`.
    public static let nodePortSet = "nodeport-endpoint-traffic"
    /// Connections, keyed as ``serviceSet``.
    public static let serviceConnectionSet = "endpoint-connections"
    /// Connections, keyed as ``nodePortSet``.
    public static let nodePortConnectionSet = "nodeport-endpoint-connections"
    /// The frontends the counting chain counts for (`address . protocol . port`): those of
    /// `service-ips`. A filter chain cannot look `service-ips` itself up, since the kernel
    /// checks the chains of a verdict map against the hook of every chain that uses it.
    public static let serviceFrontendSet = "counted-frontends"
    /// The NodePorts it counts for (`protocol . port`): those of `service-nodeports`.
    public static let nodePortFrontendSet = "counted-nodeports"
    /// The chain the filter hooks jump to for DNATed packets.
    public static let countChain = "count-endpoint-traffic"
    /// The most elements each set holds: pairs with traffic, at most one per frontend and
    /// endpoint (a million covers 50,000 services of 10 endpoints with NodePorts twice over).
    /// A dynamic set takes no memory for elements it does not have.
    public static let capacity = 1 << 20
    /// Protocols a frontend can have, each with its own rules (nft types a `ct` port only
    /// once a rule has fixed the protocol; a set of protocols would be anonymous).
    static let transports: [TransportProtocol] = [.tcp, .udp, .sctp]

    /// The key of `endpoint-traffic` and `endpoint-connections`, read from the packet's connection.
    public static func serviceKey(_ family: TableFamily) -> [Selector] {
        [.ctAddress(.destination, .original, family)] + nodePortKey(family)
    }

    /// The key of `nodeport-endpoint-traffic` and `nodeport-endpoint-connections`.
    public static func nodePortKey(_ family: TableFamily) -> [Selector] {
        [.l4proto, .ctPort(.destination, .original), .ctAddress(.source, .reply, family), .ctPort(.source, .reply)]
    }

    /// The sets: the frontends counted for (the keys of the dispatch maps, declared with
    /// the size those are), then the four counting sets: dynamic, with `counter`, no elements.
    static func sets(_ family: TableFamily, serviceIPs: NamedSet, serviceNodePorts: NamedSet) -> [NamedSet] {
        let address = family.addressType
        let service: [DataType] = [address, .inetProto, .inetService, address, .inetService]
        let nodePort: [DataType] = [.inetProto, .inetService, address, .inetService]
        let frontends = [(serviceFrontendSet, serviceIPs), (nodePortFrontendSet, serviceNodePorts)].map { name, map in
            NamedSet(name: name, key: map.key, size: map.size, elements: map.elements.map { SetElement(key: $0.key) })
        }
        return frontends + [(serviceConnectionSet, service), (nodePortConnectionSet, nodePort),
                            (serviceSet, service), (nodePortSet, nodePort)].map { name, types in
            NamedSet(name: name, key: .types(types), size: capacity, flags: [.dynamic], counter: true)
        }
    }

    /// The counting chain: per protocol, a connection's first packet to one of our
    /// frontends creates or updates its pair's elements; any other packet is looked up.
    static func countChain(_ family: TableFamily) -> Chain {
        let unconfirmed = Statement.bitTest(.ctStatus, mask: CtStatusFlag.confirmed, isSet: false)
        let serviceFrontend: [Selector] = [.ctAddress(.destination, .original, family), .l4proto,
                                           .ctPort(.destination, .original)]
        let nodePortFrontend: [Selector] = [.l4proto, .ctPort(.destination, .original)]
        var rules: [Rule] = []
        for transport in transports {
            let proto = Statement.compare(.l4proto, negated: false, .proto(transport.number))
            for (frontend, map, key, connections, traffic) in [
                (serviceFrontend, serviceFrontendSet, serviceKey(family), serviceConnectionSet, serviceSet),
                (nodePortFrontend, nodePortFrontendSet, nodePortKey(family), nodePortConnectionSet, nodePortSet),
            ] {
                rules.append(Rule([proto, unconfirmed, .lookup(frontend, set: map),
                                   .updateSet(key, set: connections, timeout: nil),
                                   .updateSet(key, set: traffic, timeout: nil), .verdict(.return)]))
            }
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

    /// The comment of a backends element for `endpoint`: its node, and whether that is this node.
    static func endpointComment(for endpoint: Endpoint, node: NodeConfig) -> String {
        EndpointNames.endpointComment(node: endpoint.nodeName,
                                      local: node.nodeName != nil && endpoint.nodeName == node.nodeName)
    }

    /// The comment of a frontend's element in `service-ips` or `service-nodeports`: its service and port.
    static func serviceComment(for frontend: Frontend) -> String {
        EndpointNames.serviceComment(frontend.service, frontend.portName)
    }
}

/// What an endpoint's counters are labelled with, kept in the kernel as comments: the
/// service and port on the frontend's element of `service-ips` or `service-nodeports`
/// (``serviceComment``: `namespace/name port`), the node on the frontend's backends
/// elements (``endpointComment``: `node local|remote`); `-` for an unnamed port or an
/// unknown node. Kubernetes names hold no spaces or quotes.
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

    /// The comment of the frontend's dispatch element: `namespace/name port` (at most
    /// 63 + 1 + 63 + 1 + 15 bytes, within the 253 nft keeps).
    public var serviceComment: String { Self.serviceComment(service, portName) }

    static func serviceComment(_ service: ServiceName, _ portName: String) -> String {
        "\(service) \(portName.isEmpty ? "-" : portName)"
    }

    /// The comment of a backends element: `node local|remote` (a node name is cut to fit
    /// the 253 bytes nft keeps).
    public var endpointComment: String { Self.endpointComment(node: node, local: local) }

    static func endpointComment(node: String?, local: Bool) -> String {
        let tail = local ? " local" : " remote"
        let name = node ?? "-"
        // Node names are DNS names (ASCII): a character is a byte.
        guard name.utf8.count + tail.utf8.count > SetElement.maximumCommentBytes else { return name + tail }
        return String(name.prefix(SetElement.maximumCommentBytes - tail.utf8.count)) + tail
    }

    /// Reads comments written by ``serviceComment`` and ``endpointComment``; nil for any other text.
    public init?(serviceComment: String, endpointComment: String) {
        let service = serviceComment.split(separator: " ", omittingEmptySubsequences: false)
        let endpoint = endpointComment.split(separator: " ", omittingEmptySubsequences: false)
        guard service.count == 2, let slash = service[0].firstIndex(of: "/"), endpoint.count == 2,
              endpoint[1] == "local" || endpoint[1] == "remote" else { return nil }
        let namespace = String(service[0][..<slash]), name = String(service[0][service[0].index(after: slash)...])
        guard !namespace.isEmpty, !name.isEmpty, !service[1].isEmpty, !endpoint[0].isEmpty else { return nil }
        self.init(service: ServiceName(namespace: namespace, name: name),
                  portName: service[1] == "-" ? "" : String(service[1]),
                  node: endpoint[0] == "-" ? nil : String(endpoint[0]), local: endpoint[1] == "local")
    }
}
