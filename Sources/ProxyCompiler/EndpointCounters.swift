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

/// One endpoint of a frontend and the connections the kernel balanced to it.
public struct EndpointCount: Hashable, Sendable, Codable {
    public var address: String
    public var port: UInt16
    /// New connections DNATed to this endpoint (its slots' counters added up).
    public var connections: UInt64

    public init(address: String, port: UInt16, connections: UInt64) {
        self.address = address; self.port = port; self.connections = connections
    }
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

    /// How far the spread is from uniform: the largest |count − N/k| among the k endpoints,
    /// in standard deviations of a uniform random choice (√(N·(1/k)·(1−1/k))). Nil with fewer
    /// than two endpoints or no connections, where there is nothing to compare.
    public var largestDeviation: Double? {
        let k = Double(endpoints.count), total = Double(totalConnections)
        guard endpoints.count >= 2, total > 0 else { return nil }
        let expected = total / k
        let deviation = (total * (1 / k) * (1 - 1 / k)).squareRoot()
        return endpoints.map { abs(Double($0.connections) - expected) / deviation }.max()
    }

    /// Every frontend with endpoints in `ruleset`, in key order, with the counts its backends
    /// maps' elements hold (``SetElement/observed``; zero where the kernel reported none).
    public static func read(_ ruleset: Ruleset) -> [FrontendTraffic] {
        var counts: [ProgrammedFrontend.Key: [Int: UInt64]] = [:]
        for table in ruleset.tables where table.name == RulesetLayout.tableName {
            let family: IPFamily = table.family == .ip ? .v4 : .v6
            for set in table.sets where EndpointCounters.isBackendsMap(set.name) {
                for element in set.elements {
                    guard case .integer(let slot)? = element.key.last,
                          let key = ProgrammedFrontend.Key(elementKey: Array(element.key.dropLast()), family: family)
                    else { continue }
                    counts[key, default: [:]][Int(slot)] = element.observed?.packets ?? 0
                }
            }
        }
        let frontends = ProgrammedFrontend.read(ruleset)
        return frontends.keys.sorted().compactMap { key -> FrontendTraffic? in
            guard let frontend = frontends[key], !frontend.targets.isEmpty else { return nil }
            var order: [ProgrammedFrontend.Target] = []
            var sums: [ProgrammedFrontend.Target: UInt64] = [:]
            for (slot, target) in frontend.targets.enumerated() {
                if sums[target] == nil { order.append(target) }
                sums[target, default: 0] += counts[key]?[slot] ?? 0
            }
            return FrontendTraffic(key: key, kind: frontend.kind, endpoints: order.map {
                EndpointCount(address: "\($0.address)", port: $0.port, connections: sums[$0] ?? 0)
            })
        }
    }
}
