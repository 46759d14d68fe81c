import Foundation
import Nftables
import ServiceModel

/// One endpoint of a frontend and what the kernel counted for it.
public struct EndpointCount: Hashable, Sendable {
    public var address: String
    public var port: UInt16
    /// New connections DNATed to this endpoint through the frontend (its
    /// `endpoint-connections-N` counter); zero where the kernel has none.
    public var connections: UInt64
    /// Packets and bytes of its flows through the frontend, both directions
    /// (`endpoint-traffic-N` counters); zero where the kernel has none.
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
        for table in ruleset.tables where table.name == RulesetLayout.tableName {
            let family: IPFamily = table.family == .ip ? .v4 : .v6
            for set in table.sets {
                if set.name == RulesetLayout.SetName.serviceIPs || set.name == RulesetLayout.SetName.serviceNodePorts {
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
        let counted = CountedPairs(ruleset)
        let frontends = ProgrammedFrontend.read(ruleset)
        return frontends.keys.sorted().compactMap { key -> FrontendTraffic? in
            guard let frontend = frontends[key], !frontend.targets.isEmpty || !(frontend.localTargets ?? []).isEmpty
            else { return nil }
            var seen = Set<Target>()
            let order = (frontend.targets + (frontend.localTargets ?? [])).filter { seen.insert($0).inserted }
            let service = serviceComments[key]
            return FrontendTraffic(key: key, kind: frontend.kind, endpoints: order.map { target in
                counted.count(key, target, open: open, names: service.flatMap { service in
                    endpointComments[key]?[target].flatMap { EndpointNames(serviceComment: service, endpointComment: $0) }
                })
            })
        }
    }

    /// Every frontend `map` gives on `node`, in key order, each endpoint (in the order the
    /// compiler gives them slots, then the node's own list of a traffic policy Local) with
    /// the counts `counted`'s counting sets hold for it (zero where none) and the names the
    /// map gives it: what ``read(_:open:)`` finds in the ruleset compiled from `map`, without
    /// compiling it and without reading anything but the counting sets from the kernel. A
    /// daemon's scrape gets the same from ``ProgrammedEndpoints/ports``, computed once per
    /// programmed map; the tests compare the two.
    public static func read(_ map: ServiceMap, node: NodeConfig, counted: Ruleset,
                            open: OpenConnections? = nil) -> [FrontendTraffic] {
        ProgrammedEndpoints(map, node: node).traffic(counted: counted, open: open)
    }

    /// What the counting sets of a ruleset hold, per frontend and endpoint.
    fileprivate struct CountedPairs {
        struct Pair: Hashable {
            var key: ProgrammedFrontend.Key
            var target: ProgrammedFrontend.Target
        }
        struct Counts {
            var connections: UInt64 = 0
            var packets: UInt64 = 0
            var bytes: UInt64 = 0
        }
        /// One entry per pair: a single hash per element read and per endpoint shown.
        var counts: [Pair: Counts] = [:]

        init(_ ruleset: Ruleset) {
            let sets = ruleset.tables.filter { $0.name == RulesetLayout.tableName }.flatMap { table in
                table.sets.compactMap { set in
                    EndpointTrafficLayout.measure(ofSet: set.name).map { (table.family == .ip ? IPFamily.v4 : .v6, set, $0) }
                }
            }
            counts.reserveCapacity(sets.reduce(0) { $0 + $1.1.elements.count } / 2)
            for (family, set, measure) in sets {
                for element in set.elements {
                    guard let (key, target) = FrontendTraffic.pair(element.key, family: family),
                          let observed = element.observed else { continue }
                    switch measure {
                    case .connections:
                        counts[Pair(key: key, target: target), default: Counts()].connections = observed.packets ?? 0
                    case .traffic:
                        let pair = Pair(key: key, target: target)
                        counts[pair, default: Counts()].packets = observed.packets ?? 0
                        counts[pair, default: Counts()].bytes = observed.bytes ?? 0
                    }
                }
            }
        }

        /// One endpoint of a frontend with its counts.
        func count(_ key: ProgrammedFrontend.Key, _ target: ProgrammedFrontend.Target, open: OpenConnections?,
                   names: EndpointNames?) -> EndpointCount {
            let found = counts[Pair(key: key, target: target)]
            return EndpointCount(address: "\(target.address)", port: target.port,
                                 connections: found?.connections ?? 0,
                                 packets: found?.packets ?? 0, bytes: found?.bytes ?? 0,
                                 names: names, open: open.map { $0.counts[key]?[target] ?? 0 })
        }
    }

    /// The frontend and the endpoint of a pair `[address .] protocol . port . endpoint . port`.
    fileprivate static func pair(_ values: [Value], family: IPFamily) -> (ProgrammedFrontend.Key, ProgrammedFrontend.Target)? {
        guard values.count >= 4, case .address(let address) = values[values.count - 2],
              case .port(let port) = values[values.count - 1],
              let key = ProgrammedFrontend.Key(elementKey: values.dropLast(2), family: family)
        else { return nil }
        return (key, ProgrammedFrontend.Target(address: address, port: port))
    }
}

/// The frontends a map compiles to on a node, each with its endpoints and their names, in
/// the order `FrontendTraffic` lists them: what a scrape of the endpoint counters needs
/// besides the counts, computed once per programmed map.
public struct ProgrammedEndpoints: Sendable {
    private struct Entry: Sendable {
        var key: ProgrammedFrontend.Key
        var kind: ProgrammedFrontend.Kind
        var endpoints: [(target: ProgrammedFrontend.Target, names: EndpointNames)]
    }
    private var entries: [Entry] = []

    /// The frontends of `map` on `node` with endpoints, in key order.
    public init(_ map: ServiceMap, node: NodeConfig) {
        typealias Target = ProgrammedFrontend.Target
        for family in [IPFamily.v4, .v6] {
            for frontend in frontends(of: map, family: family, node: node.nodeName, zone: node.zone).frontends {
                var seen = FirstSeen<Target>()
                var endpoints: [(target: Target, names: EndpointNames)] = []
                // internalTrafficPolicy Local: a ClusterIP balances to the node's own only.
                let lists = frontend.kind == .clusterIP && frontend.local != nil
                    ? [frontend.local ?? []] : [frontend.endpoints, frontend.local ?? []]
                for list in lists {
                    for endpoint in list {
                        let target = Target(address: endpoint.address, port: endpoint.port)
                        guard seen.insert(target) else { continue }
                        endpoints.append((target, EndpointNames(service: frontend.service, portName: frontend.portName,
                                                                node: endpoint.nodeName,
                                                                local: node.nodeName != nil && endpoint.nodeName == node.nodeName)))
                    }
                }
                guard !endpoints.isEmpty else { continue }
                entries.append(Entry(key: ProgrammedFrontend.Key(family: family, address: frontend.address,
                                                                 transport: frontend.transport, port: frontend.port),
                                     kind: ProgrammedFrontend.Kind(frontend.kind), endpoints: endpoints))
            }
        }
        entries.sort { $0.key < $1.key }
    }

    /// One service port's endpoints in one family, grouped as ``ServicePortTraffic/group(_:)``
    /// groups the frontends' traffic, without counts: what a scrape exports, computed once
    /// per programmed map.
    public struct PortEndpoints: Sendable {
        public var service: ServiceName
        /// The port's name ("" for the single unnamed port).
        public var portName: String
        public var family: IPFamily
        /// The port's frontends, in key order.
        public var frontends: [(key: ProgrammedFrontend.Key, kind: ProgrammedFrontend.Kind)]
        /// Each endpoint once, in first-seen order, with the names of its first frontend.
        public var endpoints: [(target: ProgrammedFrontend.Target, names: EndpointNames)]
        /// Every frontend's endpoints: the frontend, the endpoint, and its index in `endpoints`.
        public var pairs: [(frontend: ProgrammedFrontend.Key, target: ProgrammedFrontend.Target, endpoint: Int)]

        /// The `port` label of its metrics (``ServicePortTraffic/portLabel(name:frontends:)``).
        public var portLabel: String { ServicePortTraffic.portLabel(name: portName, frontends: frontends.map { ($0.kind, $0.key.port) }) }
    }

    /// The frontends grouped by service port and family, in the order of their first frontend.
    public var ports: [PortEndpoints] {
        struct GroupKey: Hashable { var service: ServiceName; var port: String; var family: IPFamily }
        var ports: [PortEndpoints] = []
        var index: [GroupKey: Int] = [:]
        var endpointIndex: [FirstSeen<ProgrammedFrontend.Target>] = []
        for entry in entries {
            guard let names = entry.endpoints.first?.names else { continue }
            let key = GroupKey(service: names.service, port: names.portName, family: entry.key.family)
            let at: Int
            if let found = index[key] {
                at = found
            } else {
                at = ports.count
                index[key] = at
                ports.append(PortEndpoints(service: names.service, portName: names.portName, family: entry.key.family,
                                           frontends: [], endpoints: [], pairs: []))
                endpointIndex.append(FirstSeen())
            }
            ports[at].frontends.append((entry.key, entry.kind))
            for endpoint in entry.endpoints {
                let position = endpointIndex[at].index(of: endpoint.target)
                if position == ports[at].endpoints.count { ports[at].endpoints.append(endpoint) }
                ports[at].pairs.append((entry.key, endpoint.target, position))
            }
        }
        return ports
    }

    /// Each frontend with its endpoints' counts from the counting sets of `counted` (zero
    /// where none) and, with `open`, their open connections.
    public func traffic(counted: Ruleset, open: OpenConnections? = nil) -> [FrontendTraffic] {
        let counts = FrontendTraffic.CountedPairs(counted)
        return entries.map { entry in
            FrontendTraffic(key: entry.key, kind: entry.kind, endpoints: entry.endpoints.map {
                counts.count(entry.key, $0.target, open: open, names: $0.names)
            })
        }
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

/// Which values were seen, and in what order: a linear search while there are few (a
/// service port's endpoints, usually), a hash table beyond. Naming 100,000 endpoints at a
/// scrape hashed each several times.
struct FirstSeen<Value: Hashable> {
    private var values: [Value] = []
    private var positions: [Value: Int]?
    private static var linearLimit: Int { 32 }

    /// Records `value`; whether it was new.
    mutating func insert(_ value: Value) -> Bool {
        let count = values.count
        return index(of: value) == count
    }

    /// The position of `value` in the order first seen, recording it at the end when new.
    mutating func index(of value: Value) -> Int {
        if let positions {
            if let known = positions[value] { return known }
        } else if let known = values.firstIndex(of: value) {
            return known
        }
        values.append(value)
        if positions != nil {
            positions?[value] = values.count - 1
        } else if values.count > Self.linearLimit {
            positions = Dictionary(uniqueKeysWithValues: values.enumerated().map { ($1, $0) })
        }
        return values.count - 1
    }
}
