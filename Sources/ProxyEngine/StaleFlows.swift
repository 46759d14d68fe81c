import Conntrack
import Nftables
import ProxyCompiler
import ServiceModel

/// Which UDP conntrack entries to delete after a ruleset change, as kube-proxy does.
///
/// UDP has no connection teardown: a client that keeps sending keeps its conntrack entry,
/// and with it the DNAT to the endpoint it first got, even after that endpoint is gone.
/// So, for UDP frontends only (TCP entries stay, so established connections drain):
/// - an endpoint left a frontend: delete the entries of that frontend DNATed to it;
/// - a frontend went from no endpoints (or not existing) to some: delete its entries,
///   which were made while packets to it went nowhere;
/// - a frontend disappeared: delete its entries.
///
/// Both rulesets are read from the maps the compiler writes (see `RulesetLayout`), so this
/// works the same after a restart, when the previous ruleset was read back from the kernel.
public enum StaleFlows {
    public static func filters(from previous: Ruleset?, to current: Ruleset) -> [ConntrackFilter] {
        var filters: [ConntrackFilter] = []
        for table in current.tables {
            let before = previous?.table(table.family, table.name).map(UDPFrontends.init) ?? UDPFrontends()
            let after = UDPFrontends(table)
            let family: IPFamily = table.family == .ip ? .v4 : .v6
            for (frontend, oldEndpoints) in before.endpoints.sorted(by: { $0.key < $1.key }) {
                let newEndpoints = after.endpoints[frontend] ?? []
                if newEndpoints.isEmpty {
                    filters.append(frontend.filter(family: family, endpoint: nil))
                    continue
                }
                for endpoint in oldEndpoints.subtracting(newEndpoints).sorted() {
                    filters.append(frontend.filter(family: family, endpoint: endpoint))
                }
            }
            for frontend in after.endpoints.keys.sorted() where (before.endpoints[frontend] ?? []).isEmpty {
                filters.append(frontend.filter(family: family, endpoint: nil))
            }
        }
        return filters
    }
}

/// A UDP frontend as the maps key it: an address and port, or a NodePort.
struct UDPFrontend: Hashable, Comparable {
    var address: IPAddress?
    var port: UInt16

    func filter(family: IPFamily, endpoint: UDPEndpoint?) -> ConntrackFilter {
        ConntrackFilter(family: family, transport: .udp,
                        originalDestination: address, originalDestinationPort: port,
                        replySource: endpoint?.address, replySourcePort: endpoint?.port,
                        requireDestinationNAT: address == nil)
    }

    /// NodePorts first, then by address and port.
    static func < (lhs: Self, rhs: Self) -> Bool {
        let left = (lhs.address?.bytes ?? []) + [UInt8(lhs.port >> 8), UInt8(lhs.port & 0xff)]
        let right = (rhs.address?.bytes ?? []) + [UInt8(rhs.port >> 8), UInt8(rhs.port & 0xff)]
        return left.lexicographicallyPrecedes(right)
    }
}

struct UDPEndpoint: Hashable, Comparable {
    var address: IPAddress
    var port: UInt16
    static func < (lhs: Self, rhs: Self) -> Bool { (lhs.address, lhs.port) < (rhs.address, rhs.port) }
}

/// The UDP frontends of one table and the endpoints each DNATs to.
struct UDPFrontends {
    var endpoints: [UDPFrontend: Set<UDPEndpoint>] = [:]

    init() {}

    init(_ table: Table) {
        let udp = TransportProtocol.udp.number
        for set in table.sets {
            let isServiceMap = set.name.hasPrefix(RulesetLayout.SetName.serviceBackendsPrefix)
            let isNodePortMap = set.name.hasPrefix(RulesetLayout.SetName.nodePortBackendsPrefix)
            guard isServiceMap || isNodePortMap else { continue }
            for element in set.elements {
                guard case .values(let data)? = element.data, data.count == 2,
                      case .address(let endpointAddress) = data[0], case .port(let endpointPort) = data[1] else { continue }
                let frontend: UDPFrontend
                switch (isServiceMap, element.key.first, element.key.dropFirst().first, element.key.dropFirst(2).first) {
                case (true, .address(let address)?, .proto(udp)?, .port(let port)?):
                    frontend = UDPFrontend(address: address, port: port)
                case (false, .proto(udp)?, .port(let port)?, _):
                    frontend = UDPFrontend(address: nil, port: port)
                default:
                    continue
                }
                endpoints[frontend, default: []].insert(UDPEndpoint(address: endpointAddress, port: endpointPort))
            }
        }
    }
}
