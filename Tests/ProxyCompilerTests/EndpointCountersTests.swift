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

    /// Counters add two sets, one chain and one rule per filter hook, whatever the services:
    /// the same with one service as with three.
    func testCountersAddAConstantNumberOfRulesAndSets() {
        for services in [[Fixtures.echoServer], [Fixtures.echoServer, Fixtures.web, Fixtures.empty]] {
            let on = compile(counters: true, services), off = compile(counters: false, services)
            for (withCounters, without) in zip(on.tables, off.tables) {
                XCTAssertFalse(without.sets.contains { $0.counter })
                XCTAssertFalse(without.sets.contains { $0.name.contains("traffic") })
                XCTAssertEqual(withCounters.sets.map(\.name),
                               without.sets.map(\.name) + [EndpointTrafficLayout.serviceSet, EndpointTrafficLayout.nodePortSet])
                XCTAssertEqual(withCounters.sets.filter(\.counter).map(\.name),
                               withCounters.sets.map(\.name).filter { $0.contains("-backends-") || $0.contains("traffic") })
                XCTAssertEqual(withCounters.chains.map(\.name).filter { !without.chains.map(\.name).contains($0) },
                               [EndpointTrafficLayout.countChain])
                let extraRules = withCounters.chains.reduce(0) { $0 + $1.rules.count } - without.chains.reduce(0) { $0 + $1.rules.count }
                XCTAssertEqual(extraRules, 3 + 6, "a jump per filter hook, a lookup per set and protocol")
            }
        }
    }

    /// One element per (frontend, endpoint), named by the service's namespace, name, port and
    /// the endpoint's node; the names read back from the comment.
    func testTrafficElementsNameTheirServiceAndEndpoint() throws {
        let ruleset = compile(counters: true, [Fixtures.echoServer])
        let table = try XCTUnwrap(ruleset.tables.first { $0.family == .ip })
        let services = try XCTUnwrap(table.sets.first { $0.name == EndpointTrafficLayout.serviceSet })
        let nodePorts = try XCTUnwrap(table.sets.first { $0.name == EndpointTrafficLayout.nodePortSet })
        XCTAssertEqual(services.elements.count, 3)
        XCTAssertEqual(nodePorts.elements.count, 3)
        for element in services.elements + nodePorts.elements {
            let names = try XCTUnwrap(element.comment.flatMap(EndpointNames.init(comment:)), "\(element)")
            XCTAssertEqual(names.service, Fixtures.echoServer.name)
            XCTAssertEqual(names.portName, Fixtures.echoServer.ports[0].name.isEmpty ? "" : Fixtures.echoServer.ports[0].name)
        }
        let names = EndpointNames(service: ServiceName(namespace: "a", name: "b"), portName: "", node: nil, local: false)
        XCTAssertEqual(names.comment, "a/b - - remote")
        XCTAssertEqual(EndpointNames(comment: names.comment), names)
        let long = EndpointNames(service: ServiceName(namespace: String(repeating: "n", count: 63), name: String(repeating: "s", count: 63)),
                                 portName: "http", node: String(repeating: "x", count: 253), local: true)
        XCTAssertLessThanOrEqual(long.comment.utf8.count, SetElement.maximumCommentBytes, "cut to nft's limit")
        XCTAssertEqual(EndpointNames(comment: long.comment)?.service, long.service)
        XCTAssertNil(EndpointNames(comment: "someone else's comment"))
    }

    func testIncrementalCompilesCarryTheCounterFlag() {
        var node = Fixtures.node
        node.endpointCounters = true
        var compiled = CompiledServices(node: node, map: ServiceMap(services: []))
        let change = compiled.apply(ServiceMap(services: [Fixtures.echoServer]))
        let maps = change.after.tables.flatMap(\.sets).filter { $0.name.contains("-backends-") || $0.name.contains("traffic") }
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
