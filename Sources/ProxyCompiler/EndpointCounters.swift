import Foundation
import Nftables
import ServiceModel

/// One endpoint of a frontend and what the kernel counted for it.
public struct EndpointCount: Hashable, Sendable {
    public var address: String
    public var port: UInt16
    /// New connections DNATed to this endpoint through the frontend (its
    /// `endpoint-connections` counter); zero where the kernel has none.
    public var connections: UInt64
    /// Packets and bytes of its flows through the frontend, both directions
    /// (`endpoint-traffic` counters); zero where the kernel has none.
    public var packets: UInt64
    public var bytes: UInt64
    /// The service, port and node the comments of its frontend's dispatch element and
    /// backends elements name; nil without them.
    public var names: EndpointNames?
    /// Its connections conntrack holds open now (``OpenConnections``); nil when not asked.
    public var open: UInt64?

    public init(address: String, port: UInt16, connections: UInt64, packets: UInt64 = 0, bytes: UInt64 = 0,
                names: EndpointNames? = nil, open: UInt64? = nil) {
        self.address = address; self.port = port; self.connections = connections
        self.packets = packets; self.bytes = bytes; self.names = names; self.open = open
    }

    /// `address:port`, `[address]:port` for IPv6.
    public var target: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }
}

/// A frontend's endpoints with their counts, as read from a table's backends maps.
public struct FrontendTraffic: Hashable, Sendable {
    public var key: ProgrammedFrontend.Key
    public var kind: ProgrammedFrontend.Kind
    /// In slot order; an endpoint in several slots appears once, with their sum.
    public var endpoints: [EndpointCount]

    public init(key: ProgrammedFrontend.Key, kind: ProgrammedFrontend.Kind, endpoints: [EndpointCount]) {
        self.key = key; self.kind = kind; self.endpoints = endpoints
    }

    /// All connections of the frontend.
    public var totalConnections: UInt64 { endpoints.reduce(0) { $0 + $1.connections } }

    /// An endpoint's share of the frontend's connections (0 when there are none).
    public func share(of endpoint: EndpointCount) -> Double {
        let total = totalConnections
        return total == 0 ? 0 : Double(endpoint.connections) / Double(total)
    }

    /// How far the spread of connections is from uniform (``SpreadDeviation``).
    public var largestDeviation: Double? { SpreadDeviation.largest(endpoints.map(\.connections)) }

    /// The service (and port name) its endpoints' names give; nil when none has names.
    public var names: EndpointNames? { endpoints.lazy.compactMap(\.names).first }

    /// Every frontend with endpoints in `ruleset`, in key order, each endpoint (in slot
    /// order, then the node's own list of a traffic policy Local) with its connections,
    /// packets and bytes (the counters of its pair's elements in the counting sets, zero
    /// where the kernel has none) and its names (the comments of the frontend's dispatch
    /// element and of its backends elements).
    /// Counting elements of pairs the backends maps no longer hold are left out. With
    /// `open`, each endpoint's open connections too (zero where it has none).
    public static func read(_ ruleset: Ruleset, open: OpenConnections? = nil) -> [FrontendTraffic] {
        typealias Target = ProgrammedFrontend.Target
        var serviceComments: [ProgrammedFrontend.Key: String] = [:]
        var endpointComments: [ProgrammedFrontend.Key: [Target: String]] = [:]
        var connections: [ProgrammedFrontend.Key: [Target: UInt64]] = [:]
        var traffic: [ProgrammedFrontend.Key: [Target: ObservedElement]] = [:]
        let connectionSets: Set = [EndpointTrafficLayout.serviceConnectionSet, EndpointTrafficLayout.nodePortConnectionSet]
        let trafficSets: Set = [EndpointTrafficLayout.serviceSet, EndpointTrafficLayout.nodePortSet]
        for table in ruleset.tables where table.name == RulesetLayout.tableName {
            let family: IPFamily = table.family == .ip ? .v4 : .v6
            for set in table.sets {
                if connectionSets.contains(set.name) || trafficSets.contains(set.name) {
                    for element in set.elements {
                        guard let (key, target) = pair(element.key, family: family), let observed = element.observed
                        else { continue }
                        if connectionSets.contains(set.name) {
                            connections[key, default: [:]][target] = observed.packets
                        } else {
                            traffic[key, default: [:]][target] = observed
                        }
                    }
                } else if set.name == RulesetLayout.SetName.serviceIPs || set.name == RulesetLayout.SetName.serviceNodePorts {
                    // The frontend's service and port.
                    for element in set.elements {
                        guard let comment = element.comment,
                              let key = ProgrammedFrontend.Key(elementKey: element.key, family: family) else { continue }
                        serviceComments[key] = comment
                    }
                } else if case .fields? = set.data {
                    // The backends maps: `frontend . slot : endpoint`, commented with its node.
                    for element in set.elements {
                        guard let comment = element.comment, case .integer? = element.key.last,
                              case let .values(values)? = element.data,
                              let (key, target) = pair(Array(element.key.dropLast()) + values, family: family)
                        else { continue }
                        if endpointComments[key]?[target] == nil { endpointComments[key, default: [:]][target] = comment }
                    }
                }
            }
        }
        let frontends = ProgrammedFrontend.read(ruleset)
        return frontends.keys.sorted().compactMap { key -> FrontendTraffic? in
            guard let frontend = frontends[key], !frontend.targets.isEmpty || !(frontend.localTargets ?? []).isEmpty
            else { return nil }
            var seen = Set<Target>()
            let order = (frontend.targets + (frontend.localTargets ?? [])).filter { seen.insert($0).inserted }
            return FrontendTraffic(key: key, kind: frontend.kind, endpoints: order.map { target in
                let observed = traffic[key]?[target]
                return EndpointCount(address: "\(target.address)", port: target.port,
                                     connections: connections[key]?[target] ?? 0,
                                     packets: observed?.packets ?? 0, bytes: observed?.bytes ?? 0,
                                     names: serviceComments[key].flatMap { service in
                                         endpointComments[key]?[target].flatMap {
                                             EndpointNames(serviceComment: service, endpointComment: $0)
                                         }
                                     },
                                     open: open.map { $0.counts[key]?[target] ?? 0 })
            })
        }
    }

    /// The frontend and the endpoint of a pair `[address .] protocol . port . endpoint . port`.
    private static func pair(_ values: [Value], family: IPFamily) -> (ProgrammedFrontend.Key, ProgrammedFrontend.Target)? {
        guard values.count >= 4, case .address(let address) = values[values.count - 2],
              case .port(let port) = values[values.count - 1],
              let key = ProgrammedFrontend.Key(elementKey: Array(values.dropLast(2)), family: family)
        else { return nil }
        return (key, ProgrammedFrontend.Target(address: address, port: port))
    }
}

/// Connections conntrack holds open now, per frontend and endpoint: what an endpoint
/// serves at this moment, next to the totals the kernel counted.
public struct OpenConnections: Hashable, Sendable {
    /// Open connections by frontend and endpoint.
    public var counts: [ProgrammedFrontend.Key: [ProgrammedFrontend.Target: UInt64]] = [:]

    public init() {}

    /// Counts one open connection DNATed from a frontend (its original destination
    /// `address`, `transport` and `port`) to `endpoint`: on the frontend of that address,
    /// or else on the NodePort of that port (a NodePort answers on any node address).
    /// Connections to neither (another program's translations) are not counted.
    /// - Parameter frontends: the frontends nftproxy programs.
    public mutating func count(address: IPAddress, transport: TransportProtocol, port: UInt16,
                               endpoint: ProgrammedFrontend.Target, frontends: Set<ProgrammedFrontend.Key>) {
        var key = ProgrammedFrontend.Key(family: address.family, address: address, transport: transport, port: port)
        if !frontends.contains(key) {
            key.address = nil
            guard frontends.contains(key) else { return }
        }
        counts[key, default: [:]][endpoint, default: 0] += 1
    }
}
