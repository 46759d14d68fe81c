import Foundation
import Nftables
import ServiceModel

/// Per-endpoint connection counters, kept by the kernel in the backends maps.
///
/// The backends maps (`service-backends-N`, `nodeport-backends-N`) are declared with
/// `counter`, so every element (one frontend's numgen slot, which names one endpoint)
/// counts the packets its lookup matched. The DNAT rule that looks them up runs in a nat
/// chain, which sees only the first packet of a connection: the element's packet count is
/// the number of connections balanced to that endpoint. No rule and no set is added, the
/// counters come and go with the elements (incremental applies keep the others' counts),
/// and a restart that adopts the tables keeps them. A service that moves to another bucket
/// (its endpoint count changed) gets fresh elements, so its counts start again from zero.
public enum EndpointCounters {
    /// `set` with per-element counters when it is a backends map; otherwise unchanged.
    public static func counting(_ set: NamedSet) -> NamedSet {
        guard isBackendsMap(set.name) else { return set }
        var counted = set
        counted.counter = true
        return counted
    }

    /// Whether `name` is the name of a backends map.
    static func isBackendsMap(_ name: String) -> Bool {
        name.hasPrefix(RulesetLayout.SetName.serviceBackendsPrefix)
            || name.hasPrefix(RulesetLayout.SetName.nodePortBackendsPrefix)
    }
}

/// One endpoint of a frontend and what the kernel counted for it.
public struct EndpointCount: Hashable, Sendable {
    public var address: String
    public var port: UInt16
    /// New connections DNATed to this endpoint (its slots' counters added up).
    public var connections: UInt64
    /// Packets and bytes of its flows through the frontend, both directions
    /// (`endpoint-traffic` counters); zero where the kernel has none.
    public var packets: UInt64
    public var bytes: UInt64
    /// The service, port and node its `endpoint-traffic` element names; nil without one.
    public var names: EndpointNames?

    public init(address: String, port: UInt16, connections: UInt64, packets: UInt64 = 0, bytes: UInt64 = 0,
                names: EndpointNames? = nil) {
        self.address = address; self.port = port; self.connections = connections
        self.packets = packets; self.bytes = bytes; self.names = names
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

    /// Every frontend with endpoints in `ruleset`, in key order: each endpoint's connections
    /// (the counters of its backends map slots, ``SetElement/observed``) and its packets,
    /// bytes and names (its `endpoint-traffic` element); zero where the kernel reported none.
    public static func read(_ ruleset: Ruleset) -> [FrontendTraffic] {
        var counts: [ProgrammedFrontend.Key: [Int: UInt64]] = [:]
        var traffic: [ProgrammedFrontend.Key: [ProgrammedFrontend.Target: SetElement]] = [:]
        for table in ruleset.tables where table.name == RulesetLayout.tableName {
            let family: IPFamily = table.family == .ip ? .v4 : .v6
            for set in table.sets {
                if EndpointCounters.isBackendsMap(set.name) {
                    for element in set.elements {
                        guard case .integer(let slot)? = element.key.last,
                              let key = ProgrammedFrontend.Key(elementKey: Array(element.key.dropLast()), family: family)
                        else { continue }
                        counts[key, default: [:]][Int(slot)] = element.observed?.packets ?? 0
                    }
                } else if set.name == EndpointTrafficLayout.serviceSet || set.name == EndpointTrafficLayout.nodePortSet {
                    for element in set.elements {
                        guard element.key.count >= 4, case .address(let address) = element.key[element.key.count - 2],
                              case .port(let port) = element.key[element.key.count - 1],
                              let key = ProgrammedFrontend.Key(elementKey: Array(element.key.dropLast(2)), family: family)
                        else { continue }
                        traffic[key, default: [:]][ProgrammedFrontend.Target(address: address, port: port)] = element
                    }
                }
            }
        }
        let frontends = ProgrammedFrontend.read(ruleset)
        return frontends.keys.sorted().compactMap { key -> FrontendTraffic? in
            guard let frontend = frontends[key], !frontend.targets.isEmpty || !(frontend.localTargets ?? []).isEmpty
            else { return nil }
            var order: [ProgrammedFrontend.Target] = []
            var sums: [ProgrammedFrontend.Target: UInt64] = [:]
            for (slot, target) in frontend.targets.enumerated() {
                if sums[target] == nil { order.append(target) }
                sums[target, default: 0] += counts[key]?[slot] ?? 0
            }
            // Endpoints only the node's own list of a traffic policy Local has.
            let elements = traffic[key] ?? [:]
            for target in (frontend.localTargets ?? []) + elements.keys.sorted() where sums[target] == nil {
                order.append(target)
                sums[target] = 0
            }
            return FrontendTraffic(key: key, kind: frontend.kind, endpoints: order.map { target in
                let element = elements[target]
                return EndpointCount(address: "\(target.address)", port: target.port, connections: sums[target] ?? 0,
                                     packets: element?.observed?.packets ?? 0, bytes: element?.observed?.bytes ?? 0,
                                     names: element?.comment.flatMap(EndpointNames.init(comment:)))
            })
        }
    }
}
