import Nftables
import ProxyCompiler
import ServiceModel

/// The kind of service address a packet was sent to.
public enum FrontendKind: String, Hashable, Sendable {
    case clusterIP = "ClusterIP"
    case externalIP = "externalIP"
    case loadBalancerIP = "LoadBalancer IP"
    case nodePort = "NodePort"
    /// A service address of the ruleset whose Service is not known (no objects given).
    case serviceAddress = "service address"
}

/// The service frontend a packet matched.
public struct MatchedFrontend: Hashable, Sendable {
    /// What was addressed.
    public var kind: FrontendKind
    /// The address matched; nil for a NodePort (any local address).
    public var address: IPAddress?
    /// The port matched (the NodePort for a NodePort).
    public var port: UInt16
    public var transport: TransportProtocol
    /// The Service and its port's name, when the objects are known.
    public var service: ServiceName?
    public var portName: String?
}

/// Why a packet's source was rewritten to the node's address.
public enum MasqueradeReason: Hashable, Sendable {
    /// The source is outside every `--cluster-cidr` (the node itself, another host).
    case sourceOutsideClusterCIDRs
    /// `--masquerade-all`.
    case masqueradeAll
    /// External traffic to an externalIP or LoadBalancer IP (externalTrafficPolicy Cluster).
    case externalAddress
    /// Traffic to a NodePort (externalTrafficPolicy Cluster).
    case nodePort
    /// A pod reached itself through the service (hairpin).
    case hairpin
    /// The node's own traffic to an address with externalTrafficPolicy Local, short-circuited
    /// to every endpoint.
    case nodeShortCircuit
    /// Marked by a chain nftproxy does not know (a foreign or newer ruleset).
    case markedIn(chain: String)
}

/// Why a packet was refused.
public enum RefusalReason: Hashable, Sendable {
    /// The service has no usable endpoint for this port.
    case noEndpoints
    /// The address is a ClusterIP, but no service defines this port and protocol on it.
    case undefinedPort
    /// A rule nftproxy does not know refused it.
    case ruleIn(chain: String)
}

/// One endpoint a packet may reach.
public struct EndpointShare: Hashable, Sendable {
    public var address: IPAddress
    public var port: UInt16
    /// The chance that a new connection goes here.
    public var probability: Double
    /// The endpoint's node, when the objects are known.
    public var nodeName: String?
    /// Why the source is masqueraded on the way there; nil when it is kept.
    public var masquerade: MasqueradeReason?
}

/// What the ruleset does with a packet, in nftproxy's terms.
public enum PacketVerdict: Hashable, Sendable {
    /// DNAT to one of these endpoints.
    case balanced([EndpointShare])
    /// Refused with a TCP reset or an ICMP port unreachable.
    case rejected(RejectKind, RefusalReason)
    /// Dropped silently, by a rule in this chain.
    case dropped(chain: String)
    /// Not a service address: nftproxy's rules let it pass unchanged (masqueraded when noted).
    case untouched(masquerade: MasqueradeReason?)
}

/// The answer to "where does this packet go?": the frontend it matched, the verdict, and
/// every path through the ruleset with its probability.
public struct Explanation: Hashable, Sendable {
    public var packet: Packet
    public var origin: PacketOrigin
    /// The service frontend matched; nil when the packet is not for a service.
    public var frontend: MatchedFrontend?
    public var verdict: PacketVerdict
    /// The paths the verdict summarises, most likely first.
    public var paths: [PacketPath]
}

/// Explains packets against a ruleset: `RulesetWalker` for the paths, the ruleset layout
/// and (when given) the ServiceMap for their meaning.
public struct PacketExplainer: Sendable {
    private let walker: RulesetWalker
    private let services: ServiceMap?
    private let owners: FrontendOwners?

    private typealias Chains = RulesetLayout.ChainName
    private typealias Sets = RulesetLayout.SetName

    /// An explainer for `ruleset` on a node with `node`'s local addresses. `services`, when
    /// given, names the Service, port and endpoint nodes of a match.
    public init(ruleset: Ruleset, node: NodeFacts, services: ServiceMap? = nil) {
        walker = RulesetWalker(ruleset: ruleset, node: node)
        self.services = services
        owners = services.map(FrontendOwners.init)
    }

    /// Follows `packet` entering at `origin` and says what happens to it.
    public func explain(_ packet: Packet, from origin: PacketOrigin) -> Explanation {
        let paths = walker.paths(of: packet, from: origin)
        let frontend = paths.lazy.compactMap { self.frontend(in: $0.steps, packet: packet) }.first
        return Explanation(packet: packet, origin: origin, frontend: frontend,
                           verdict: verdict(of: paths, frontend: frontend), paths: paths)
    }

    private func verdict(of paths: [PacketPath], frontend: MatchedFrontend?) -> PacketVerdict {
        // The ruleset's only random choice is the endpoint: every path shares one fate kind.
        guard let first = paths.first else { return .untouched(masquerade: nil) }
        switch first.fate {
        case .rejected(let kind):
            return .rejected(kind, refusal(in: first.steps))
        case .dropped:
            return .dropped(chain: first.steps.last?.chain ?? "")
        case .deliveredLocally, .forwarded, .sent:
            break
        }
        let translated = paths.filter { path in path.steps.contains { step in
            step.events.contains { if case .translated = $0 { return true } else { return false } }
        } }
        guard !translated.isEmpty else {
            return .untouched(masquerade: first.masqueraded ? masqueradeReason(in: first.steps) : nil)
        }
        var shares: [EndpointShare] = []
        for path in translated {
            let reason = path.masqueraded ? masqueradeReason(in: path.steps) : nil
            if let index = shares.firstIndex(where: { $0.address == path.packet.destination
                && $0.port == path.packet.destinationPort && $0.masquerade == reason }) {
                shares[index].probability += path.probability
            } else {
                shares.append(EndpointShare(address: path.packet.destination, port: path.packet.destinationPort,
                                            probability: path.probability,
                                            nodeName: nodeName(of: path.packet, frontend: frontend),
                                            masquerade: reason))
            }
        }
        return .balanced(shares.sorted { ($0.address, $0.port) < ($1.address, $1.port) })
    }

    /// The frontend a path matched: the dispatch element, or the no-endpoint set that held it.
    private func frontend(in steps: [TraceStep], packet: Packet) -> MatchedFrontend? {
        for step in steps {
            for event in step.events {
                switch event {
                case .dispatched(let map, let key, let verdict):
                    if map == Sets.serviceIPs || map == Sets.serviceNodePorts {
                        return frontend(key: key, chainHint: verdict, packet: packet)
                    }
                case .found(let set, let key):
                    if set == Sets.noEndpointServices || set == Sets.noEndpointNodePorts {
                        return frontend(key: key, chainHint: nil, packet: packet)
                    }
                default:
                    continue
                }
            }
        }
        return nil
    }

    private func frontend(key: [Value], chainHint: Verdict?, packet: Packet) -> MatchedFrontend? {
        guard let parsed = ProgrammedFrontend.Key(elementKey: key, family: packet.family) else { return nil }
        let (address, transport, port) = (parsed.address, parsed.transport, parsed.port)
        var frontend = MatchedFrontend(kind: address == nil ? .nodePort : .serviceAddress, address: address,
                                       port: port, transport: transport)
        if address != nil, case .goto(let chain)? = chainHint {
            let external = chain.hasPrefix(Chains.externalBalancer(0).dropLast()) || chain == Chains.externalLocalPolicy
                || chain == Chains.sourceRangesCheck
            frontend.kind = external ? .externalIP : .clusterIP
        }
        if let owner = owners?[parsed], let service = services?.services.first(where: { $0.name == owner.service }) {
            frontend.service = owner.service
            frontend.portName = owner.portName
            if let address {
                frontend.kind = service.clusterIPs.contains(address) ? .clusterIP
                    : service.externalIPs.contains(address) ? .externalIP : .loadBalancerIP
            }
        }
        return frontend
    }

    private func nodeName(of packet: Packet, frontend: MatchedFrontend?) -> String? {
        guard let frontend, let name = frontend.service,
              let service = services?.services.first(where: { $0.name == name }) else { return nil }
        let port = service.ports.first { $0.name == frontend.portName && $0.transport == frontend.transport }
        return port?.endpoints.first { $0.address == packet.destination && $0.port == packet.destinationPort }?.nodeName
    }

    /// Why the packet was masqueraded: the chain that first asked for it.
    private func masqueradeReason(in steps: [TraceStep]) -> MasqueradeReason? {
        guard let step = steps.first(where: { step in
            step.events.contains { if case .markSet = $0 { return true } else { return false } }
        }) else { return nil }
        switch step.chain {
        case Chains.masqueradeOffCluster: return .sourceOutsideClusterCIDRs
        case Chains.markForMasquerade where steps.contains(where: {
            $0.chain == Chains.externalLocalPolicy || $0.chain == Chains.nodePortLocalPolicy }):
            return .nodeShortCircuit
        case Chains.markForMasquerade: return .masqueradeAll
        case Chains.masquerading: return .hairpin
        case let chain where chain.hasPrefix(Chains.nodePortBalancer(0).dropLast()): return .nodePort
        case let chain where chain.hasPrefix(Chains.externalBalancer(0).dropLast()): return .externalAddress
        // Session affinity's chains in front of those buckets mark the same way.
        case Chains.affinityNodePort: return .nodePort
        case Chains.affinityExternal: return .externalAddress
        default: return .markedIn(chain: step.chain)
        }
    }

    /// Why the packet was refused: the set that sent it to the reject chain.
    private func refusal(in steps: [TraceStep]) -> RefusalReason {
        for step in steps.reversed() {
            for case .found(let set, _) in step.events {
                switch set {
                case Sets.noEndpointServices, Sets.noEndpointNodePorts: return .noEndpoints
                case Sets.clusterIPs: return .undefinedPort
                default: continue
                }
            }
        }
        return .ruleIn(chain: steps.last?.chain ?? "")
    }
}
