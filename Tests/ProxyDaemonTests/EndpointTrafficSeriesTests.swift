import NIOCore
import Nftables
import ProxyCompiler
@testable import ProxyDaemon
import ServiceModel
import ServiceTestSupport
import XCTest

/// The scrape's series (computed once per programmed map, then filled from the counting
/// elements' key bytes) give the same text as grouping the frontends read with their counts.
final class EndpointTrafficSeriesTests: XCTestCase {
    private let node: NodeConfig = {
        var node = NodeConfig(nodeName: "node-1", nodeIPs: [IPAddress("192.0.2.10")!],
                              clusterCIDRs: [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])
        node.zone = "zone-a"
        node.endpointCounters = true
        return node
    }()

    /// Random maps with every traffic policy, counted pairs, stale pairs the map no longer
    /// has, open connections, with and without a limit.
    func testTheSeriesWriteWhatTheGroupedFrontendsWrite() throws {
        var random = RandomServices(seed: 20261203)
        for round in 0..<20 {
            let map = random.map(size: 40)
            var ruleset = Compiler(node: node).compile(map).ruleset
            let programmed = FrontendTraffic.read(ruleset)
            var open = OpenConnections()
            var counted = 0
            for tableIndex in ruleset.tables.indices {
                let family = ruleset.tables[tableIndex].family
                var elements: [String: [SetElement]] = [:]
                for (index, frontend) in programmed.enumerated() where frontend.key.family == (family == .ip ? .v4 : .v6) {
                    let frontendValues: [Value] = (frontend.key.address.map { [.address($0)] } ?? [])
                        + [.proto(frontend.key.transport.number), .port(frontend.key.port)]
                    let shard = EndpointTrafficLayout.shard(of: frontendValues)
                    var targets = frontend.endpoints.map { ($0.address, $0.port) }
                    // A pair the map no longer has: its elements are read and left out.
                    targets.append((family == .ip ? "198.19.250.\(index % 250)" : "2001:db8:1:fa::\(index)", 9999))
                    for (slot, (address, port)) in targets.enumerated() where (index + slot) % 3 != 0 {
                        let key = frontendValues + [.address(IPAddress(address)!), .port(port)]
                        let connections = UInt64(index * 7 + slot + 1)
                        for measure in EndpointTrafficLayout.Measure.allCases {
                            var element = SetElement(key: key)
                            element.observed = measure == .connections
                                ? ObservedElement(packets: connections, bytes: connections * 60)
                                : ObservedElement(packets: connections * 9, bytes: connections * 900)
                            let set = EndpointTrafficLayout.setName(nodePort: frontend.key.address == nil, measure, shard: shard)
                            elements[set, default: []].append(element)
                        }
                        counted += 1
                        if slot % 2 == 0 {
                            open.counts[frontend.key, default: [:]][ProgrammedFrontend.Target(address: IPAddress(address)!, port: port)] = UInt64(slot + 1)
                        }
                    }
                }
                for setIndex in ruleset.tables[tableIndex].sets.indices {
                    let name = ruleset.tables[tableIndex].sets[setIndex].name
                    if let filled = elements[name] { ruleset.tables[tableIndex].sets[setIndex].elements = filled }
                }
            }
            XCTAssertGreaterThan(counted, 0, "round \(round) counted something")
            for limit in [0, 7] {
                let expected = EndpointTrafficMetrics.text(
                    ServicePortTraffic.group(FrontendTraffic.read(map, node: node, counted: ruleset, open: open)), limit: limit)
                let series = EndpointTrafficSeries(ProgrammedEndpoints(map, node: node).ports, limit: limit)
                var counts = series.zeroCounts()
                for table in ruleset.tables {
                    for set in table.sets {
                        guard let measure = EndpointTrafficLayout.measure(ofSet: set.name) else { continue }
                        for element in set.elements {
                            series.add(measure, key: SetElement.kernelBytes(ofKey: element.key), family: table.family,
                                       packets: element.observed?.packets ?? 0, bytes: element.observed?.bytes ?? 0,
                                       to: &counts)
                        }
                    }
                }
                series.add(open, to: &counts)
                var buffer = ByteBuffer()
                series.write(counts, to: &buffer)
                XCTAssertEqual(series.dropped, expected.dropped, "round \(round), limit \(limit)")
                let text = String(buffer: buffer)
                if text != expected.text {
                    let mine = text.split(separator: "\n"), theirs = expected.text.split(separator: "\n")
                    let first = zip(mine, theirs).first { $0 != $1 }
                    XCTFail("round \(round), limit \(limit): \(mine.count) lines against \(theirs.count); first difference: \(String(describing: first))")
                }
                XCTAssertTrue(text.contains(where: { $0 != "0" }) && counts.connections.contains { $0 > 0 },
                              "round \(round): some count is not zero")
            }
        }
    }

    /// Counters are written in full, from 0 to the largest a 64-bit counter holds.
    func testValuesAreWrittenInFullDecimal() throws {
        var random = RandomServices(seed: 7)
        let series = EndpointTrafficSeries(ProgrammedEndpoints(random.map(size: 10), node: node).ports, limit: 0)
        XCTAssertGreaterThanOrEqual(series.count, 3)
        var counts = series.zeroCounts()
        counts.connections[0] = .max
        counts.connections[1] = 1_000_000_000
        var buffer = ByteBuffer()
        series.write(counts, to: &buffer)
        let lines = String(buffer: buffer).split(separator: "\n").filter { $0.hasPrefix(EndpointTrafficMetrics.connectionsName + "{") }
        XCTAssertEqual(lines.count, series.count)
        XCTAssertTrue(lines[0].hasSuffix("} 18446744073709551615"), String(lines[0]))
        XCTAssertTrue(lines[1].hasSuffix("} 1000000000"), String(lines[1]))
        XCTAssertTrue(lines[2].hasSuffix("} 0"), String(lines[2]))
    }
}
