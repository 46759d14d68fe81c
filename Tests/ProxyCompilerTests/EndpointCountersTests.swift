import XCTest
import Nftables
import ServiceModel
@testable import ProxyCompiler

/// Endpoint counters: which maps count, and reading the counts back per frontend and endpoint.
final class EndpointCountersTests: XCTestCase {
    private func compile(counters: Bool, _ services: [Service] = [Fixtures.echoServer, Fixtures.web, Fixtures.empty]) -> Ruleset {
        var node = Fixtures.node
        node.endpointCounters = counters
        return Compiler(node: node).compile(ServiceMap(services: services)).ruleset
    }

    func testOnlyBackendsMapsCountAndNoRuleIsAdded() {
        let on = compile(counters: true), off = compile(counters: false)
        for (withCounters, without) in zip(on.tables, off.tables) {
            XCTAssertEqual(withCounters.chains, without.chains, "counters add no rule")
            XCTAssertEqual(withCounters.sets.map(\.name), without.sets.map(\.name), "counters add no set")
            XCTAssertFalse(without.sets.contains { $0.counter })
            let counting = withCounters.sets.filter(\.counter).map(\.name)
            XCTAssertFalse(counting.isEmpty)
            XCTAssertEqual(counting, withCounters.sets.map(\.name).filter { $0.contains("-backends-") },
                           "exactly the backends maps count")
        }
    }

    func testIncrementalCompilesCarryTheCounterFlag() {
        var node = Fixtures.node
        node.endpointCounters = true
        var compiled = CompiledServices(node: node, map: ServiceMap(services: []))
        let change = compiled.apply(ServiceMap(services: [Fixtures.echoServer]))
        let maps = change.after.tables.flatMap(\.sets).filter { $0.name.contains("-backends-") }
        XCTAssertFalse(maps.isEmpty)
        XCTAssertTrue(maps.allSatisfy(\.counter), "incremental tables declare the maps as the full compile does")
    }

    /// Counts as the kernel reports them (`observed`), summed per endpoint across slots.
    func testReadsConnectionsPerEndpointFromObservedCounters() throws {
        var ruleset = compile(counters: true, [Fixtures.echoServer])
        var packets: UInt64 = 0
        for tableIndex in ruleset.tables.indices {
            for setIndex in ruleset.tables[tableIndex].sets.indices
            where ruleset.tables[tableIndex].sets[setIndex].name.contains("-backends-") {
                for elementIndex in ruleset.tables[tableIndex].sets[setIndex].elements.indices {
                    packets += 1
                    ruleset.tables[tableIndex].sets[setIndex].elements[elementIndex].observed =
                        ObservedElement(packets: packets, bytes: packets * 60)
                }
            }
        }
        let traffic = FrontendTraffic.read(ruleset)
        XCTAssertEqual(traffic.map(\.key.description), ["198.18.0.10:80/tcp", "NodePort 32000/tcp (IPv4)"])
        for frontend in traffic {
            XCTAssertEqual(frontend.endpoints.map(\.address), ["198.19.1.11", "198.19.1.12", "198.19.1.13"])
            XCTAssertEqual(Set(frontend.endpoints.map(\.connections)).count, 3, "each slot its own count")
        }
        let all = traffic.flatMap(\.endpoints).map(\.connections).sorted()
        XCTAssertEqual(all, Array(1...packets), "every element's count lands on exactly one endpoint")
    }

    func testSlotsOfOneEndpointAddUpAndTheDeviationIsInStandardDeviations() {
        let key = ProgrammedFrontend.Key(family: .v4, address: nil, transport: .tcp, port: 30000)
        let even = FrontendTraffic(key: key, kind: .nodePort, endpoints: [
            EndpointCount(address: "10.0.0.1", port: 80, connections: 50),
            EndpointCount(address: "10.0.0.2", port: 80, connections: 50),
        ])
        XCTAssertEqual(even.largestDeviation, 0)
        XCTAssertEqual(even.share(of: even.endpoints[0]), 0.5)
        // 100 connections over 2 endpoints: sd = sqrt(100 * 1/2 * 1/2) = 5; 70 is 20 off, 4 sd.
        let skewed = FrontendTraffic(key: key, kind: .nodePort, endpoints: [
            EndpointCount(address: "10.0.0.1", port: 80, connections: 70),
            EndpointCount(address: "10.0.0.2", port: 80, connections: 30),
        ])
        XCTAssertEqual(skewed.largestDeviation ?? 0, 4, accuracy: 1e-9)
        let single = FrontendTraffic(key: key, kind: .nodePort, endpoints: [skewed.endpoints[0]])
        XCTAssertNil(single.largestDeviation, "nothing to compare with one endpoint")
    }
}
