import Nftables
import ServiceModel

/// Per-endpoint counters of connections, packets and bytes (both directions), kept by the
/// kernel in dynamic sets with per-element counters (docs/ruleset.md, "Endpoint counters").
///
/// Every flow the NAT chains sent to an endpoint carries `ct status dnat`, and conntrack
/// keeps its frontend (the original tuple's destination) and its endpoint (the reply
/// tuple's source) on every packet of it, whichever way the packet goes. One chain, jumped
/// to from the filter hooks for such packets, looks the frontend up in `counted-frontends`
/// (`counted-nodeports` for NodePorts, whose frontend address is any of the node's): copies
/// of the keys of `service-ips` and `service-nodeports` whose verdict is a `goto` to the
/// frontend's shard chain. The shard chain counts by the pair
/// `frontend . protocol . port . endpoint . port` (NodePorts: `protocol . port . endpoint
/// . port`) in its own sets:
///
/// - the first packet of a connection (its conntrack entry not yet confirmed) makes or
///   updates the pair's element in `endpoint-connections-N` (one count per connection) and
///   in `endpoint-traffic-N` (its first packet);
/// - every later packet is looked up in `endpoint-traffic-N`, which counts it if the pair
///   has an element.
///
/// The counts are spread over ``shardCount`` sets of each kind because reading a set's
/// elements back (`nftproxy stats`, the metrics) costs time quadratic in its size: the
/// kernel restarts its walk of the set for every message of a dump (docs/kernel.md). A
/// frontend's shard is a hash of its key (``shard(of:)``), so it never moves.
///
/// So no element is written when services are programmed but the frontend's one in the
/// `counted-*` map: the packet path creates one per pair that carries traffic, and the sync
/// retires the elements of pairs that left the backends maps
/// (``DerivedKeys/retirements(from:to:removed:)``). Element comments name each frontend's
/// service and port (in `service-ips` and `service-nodeports`) and each endpoint's node (in
/// the backends maps), so that `nftproxy stats` needs nothing but the kernel.
public enum EndpointTrafficLayout {
    /// What a counting set counts.
    public enum Measure: Hashable, Sendable, CaseIterable {
        /// New connections: the first packet of each.
        case connections
        /// Packets and bytes of every packet.
        case traffic
    }

    /// Into how many sets of each kind the counts are spread (a constant: the number of
    /// rules and sets does not depend on the services).
    public static let shardCount = 16
    /// Prefix of the sets counting packets and bytes, `frontend . protocol . port .
    /// endpoint . port`, for ClusterIPs, externalIPs and LB IPs: `endpoint-traffic-N`.
    public static let serviceSetPrefix = "endpoint-traffic-"
    /// Prefix of the sets counting packets and bytes, `protocol . NodePort . endpoint . port`.
    public static let nodePortSetPrefix = "nodeport-endpoint-traffic-"
    /// Prefix of the sets counting connections, keyed as ``serviceSetPrefix``.
    public static let serviceConnectionSetPrefix = "endpoint-connections-"
    /// Prefix of the sets counting connections, keyed as ``nodePortSetPrefix``.
    public static let nodePortConnectionSetPrefix = "nodeport-endpoint-connections-"
    /// The frontends the counting chain counts for (`address . protocol . port`): those of
    /// `service-ips`, each with a `goto` to its shard chain. A filter chain cannot look
    /// `service-ips` itself up, since the kernel checks the chains of a verdict map against
    /// the hook of every chain that uses it.
    public static let serviceFrontendSet = "counted-frontends"
    /// The NodePorts it counts for (`protocol . port`): those of `service-nodeports`.
    public static let nodePortFrontendSet = "counted-nodeports"
    /// The chain the filter hooks jump to for DNATed packets.
    public static let countChain = "count-endpoint-traffic"
    /// Prefix of the shard chains of ClusterIP, externalIP and LB IP frontends.
    public static let serviceShardChainPrefix = "count-endpoints-"
    /// Prefix of the shard chains of NodePorts.
    public static let nodePortShardChainPrefix = "count-nodeport-endpoints-"
    /// The most elements each set holds: pairs with traffic, at most one per frontend and
    /// endpoint. A dynamic set takes no memory for elements it does not have.
    public static let capacity = 1 << 20
    /// Protocols a frontend can have, each with its own rules (nft types a `ct` port only
    /// once a rule has fixed the protocol; a set of protocols would be anonymous).
    static let transports: [TransportProtocol] = [.tcp, .udp, .sctp]

    /// The name of a counting set: NodePort or not, what it counts, and its shard.
    public static func setName(nodePort: Bool, _ measure: Measure, shard: Int) -> String {
        let prefix = switch (nodePort, measure) {
        case (false, .traffic): serviceSetPrefix
        case (true, .traffic): nodePortSetPrefix
        case (false, .connections): serviceConnectionSetPrefix
        case (true, .connections): nodePortConnectionSetPrefix
        }
        return prefix + String(shard)
    }

    /// What the counting set `name` counts; nil when `name` is not one.
    public static func measure(ofSet name: String) -> Measure? {
        // The NodePort prefixes end with the others: test them first.
        for (prefix, measure) in [(nodePortConnectionSetPrefix, Measure.connections), (nodePortSetPrefix, .traffic),
                                  (serviceConnectionSetPrefix, .connections), (serviceSetPrefix, .traffic)]
        where name.hasPrefix(prefix) {
            guard let shard = Int(name.dropFirst(prefix.count)), (0..<shardCount).contains(shard) else { return nil }
            return measure
        }
        return nil
    }

    /// The shard of a frontend (its key in `service-ips` or `service-nodeports`): a hash of
    /// the key's bytes (FNV-1a, the same in every process) modulo ``shardCount``.
    public static func shard(of key: [Value]) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        for value in key { value.appendBytes(to: &bytes) }
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return Int(hash % UInt64(shardCount))
    }

    /// The name of a frontend's shard chain.
    static func shardChain(nodePort: Bool, shard: Int) -> String {
        (nodePort ? nodePortShardChainPrefix : serviceShardChainPrefix) + String(shard)
    }

    /// The key of the service counting sets, read from the packet's connection.
    public static func serviceKey(_ family: TableFamily) -> [Selector] {
        [.ctAddress(.destination, .original, family)] + nodePortKey(family)
    }

    /// The key of the NodePort counting sets.
    public static func nodePortKey(_ family: TableFamily) -> [Selector] {
        [.l4proto, .ctPort(.destination, .original), .ctAddress(.source, .reply, family), .ctPort(.source, .reply)]
    }

    /// The sets: the frontends counted for (the keys of the dispatch maps, declared with
    /// the size those are, each sent to its shard chain), then the counting sets: dynamic,
    /// with `counter`, no elements.
    static func sets(_ family: TableFamily, serviceIPs: NamedSet, serviceNodePorts: NamedSet) -> [NamedSet] {
        let address = family.addressType
        let service: [DataType] = [address, .inetProto, .inetService, address, .inetService]
        let nodePort: [DataType] = [.inetProto, .inetService, address, .inetService]
        let frontends = [(serviceFrontendSet, serviceIPs, false), (nodePortFrontendSet, serviceNodePorts, true)]
            .map { name, map, isNodePort in
                NamedSet(name: name, key: map.key, data: .verdict, size: map.size,
                         elements: map.elements.map { frontendElement(key: $0.key, nodePort: isNodePort) })
            }
        var counting: [NamedSet] = []
        for measure in Measure.allCases {
            for (isNodePort, types) in [(false, service), (true, nodePort)] {
                for shard in 0..<shardCount {
                    counting.append(NamedSet(name: setName(nodePort: isNodePort, measure, shard: shard),
                                             key: .types(types), size: capacity, flags: [.dynamic], counter: true))
                }
            }
        }
        return frontends + counting
    }

    /// A frontend's element of `counted-frontends` or `counted-nodeports`.
    static func frontendElement(key: [Value], nodePort: Bool) -> SetElement {
        SetElement(key: key, data: .verdict(.goto(shardChain(nodePort: nodePort, shard: shard(of: key)))))
    }

    /// The counting chain: per protocol, the frontend's shard chain, by `counted-frontends`
    /// or `counted-nodeports`; then the shard chains, which count in their own sets.
    static func countChains(_ family: TableFamily) -> [Chain] {
        let serviceFrontend: [Selector] = [.ctAddress(.destination, .original, family), .l4proto,
                                           .ctPort(.destination, .original)]
        let nodePortFrontend: [Selector] = [.l4proto, .ctPort(.destination, .original)]
        var dispatch: [Rule] = []
        for transport in transports {
            let proto = Statement.compare(.l4proto, negated: false, .proto(transport.number))
            dispatch.append(Rule([proto, .verdictMap(serviceFrontend, map: serviceFrontendSet)]))
            dispatch.append(Rule([proto, .verdictMap(nodePortFrontend, map: nodePortFrontendSet)]))
        }
        var chains = [Chain(name: countChain, rules: dispatch)]
        for isNodePort in [false, true] {
            for shard in 0..<shardCount {
                chains.append(shardChain(family, nodePort: isNodePort, shard: shard))
            }
        }
        return chains
    }

    /// One shard chain: a connection's first packet creates or updates its pair's elements
    /// in the shard's sets, any other packet is looked up.
    private static func shardChain(_ family: TableFamily, nodePort: Bool, shard: Int) -> Chain {
        let unconfirmed = Statement.bitTest(.ctStatus, mask: CtStatusFlag.confirmed, isSet: false)
        let key = nodePort ? nodePortKey(family) : serviceKey(family)
        let connections = setName(nodePort: nodePort, .connections, shard: shard)
        let traffic = setName(nodePort: nodePort, .traffic, shard: shard)
        var rules: [Rule] = []
        for transport in transports {
            let proto = Statement.compare(.l4proto, negated: false, .proto(transport.number))
            rules.append(Rule([proto, unconfirmed, .updateSet(key, set: connections, timeout: nil),
                               .updateSet(key, set: traffic, timeout: nil), .verdict(.return)]))
            rules.append(Rule([proto, .lookup(key, set: traffic), .verdict(.return)]))
        }
        return Chain(name: shardChain(nodePort: nodePort, shard: shard), rules: rules)
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
