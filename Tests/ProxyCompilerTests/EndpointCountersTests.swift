import XCTest
import Nftables
import ServiceModel
import ServiceTestSupport
@testable import ProxyCompiler

/// Endpoint counters: the counting sets and chain, the names on the backends elements,
/// reading the counts back per frontend and endpoint, and retiring the elements of gone pairs.
final class EndpointCountersTests: XCTestCase {
    private func compile(counters: Bool, _ services: [Service] = [Fixtures.echoServer, Fixtures.web, Fixtures.empty]) -> Ruleset {
        var node = Fixtures.node
        node.endpointCounters = counters
        return Compiler(node: node).compile(ServiceMap(services: services)).ruleset
    }

    /// The counting sets, by name: per measure, the ClusterIP-style shards then the NodePort ones.
    private static let countingSets: [String] = ["endpoint-connections-", "nodeport-endpoint-connections-",
                                                 "endpoint-traffic-", "nodeport-endpoint-traffic-"]
        .flatMap { prefix in (0..<16).map { prefix + String($0) } }
    private static let frontendSets = [EndpointTrafficLayout.serviceFrontendSet, EndpointTrafficLayout.nodePortFrontendSet]
    private static let shardChains = ["count-endpoints-", "count-nodeport-endpoints-"]
        .flatMap { prefix in (0..<16).map { prefix + String($0) } }

    /// Counters add 64 empty dynamic sets (16 shards of four kinds), two verdict maps of the
    /// frontends counted for (the keys of the dispatch maps, each sent to its shard's chain),
    /// 33 chains and their rules, whatever the services: the same with one service as with
    /// three. Nothing else counts.
    func testCountersAddAConstantNumberOfRulesAndSets() {
        for services in [[Fixtures.echoServer], [Fixtures.echoServer, Fixtures.web, Fixtures.empty]] {
            let on = compile(counters: true, services), off = compile(counters: false, services)
            for (withCounters, without) in zip(on.tables, off.tables) {
                XCTAssertFalse(without.sets.contains { $0.counter })
                XCTAssertFalse(without.sets.contains { Self.countingSets.contains($0.name) })
                XCTAssertEqual(withCounters.sets.map(\.name), without.sets.map(\.name) + Self.frontendSets + Self.countingSets)
                for (name, map) in zip(Self.frontendSets, [RulesetLayout.SetName.serviceIPs, RulesetLayout.SetName.serviceNodePorts]) {
                    let frontends = withCounters.sets.first { $0.name == name }
                    let dispatch = withCounters.sets.first { $0.name == map }
                    XCTAssertEqual(frontends?.elements.map(\.key), dispatch?.elements.map(\.key), name)
                    XCTAssertEqual(frontends?.size, dispatch?.size, name)
                    for element in frontends?.elements ?? [] {
                        guard case let .verdict(.goto(chain))? = element.data else { XCTFail("\(element)"); continue }
                        let prefix = name == EndpointTrafficLayout.serviceFrontendSet ? "count-endpoints-" : "count-nodeport-endpoints-"
                        XCTAssertEqual(chain, prefix + String(EndpointTrafficLayout.shard(of: element.key)))
                    }
                }
                let counting = withCounters.sets.filter(\.counter)
                XCTAssertEqual(counting.map(\.name), Self.countingSets)
                for set in counting {
                    XCTAssertEqual(set.flags, [.dynamic], set.name)
                    XCTAssertEqual(set.size, EndpointTrafficLayout.capacity, "a size that does not depend on the services")
                    XCTAssertTrue(set.elements.isEmpty, "the packet path creates the elements")
                }
                XCTAssertEqual(withCounters.chains.map(\.name).filter { !without.chains.map(\.name).contains($0) },
                               [EndpointTrafficLayout.countChain] + Self.shardChains)
                let extraRules = withCounters.chains.reduce(0) { $0 + $1.rules.count } - without.chains.reduce(0) { $0 + $1.rules.count }
                XCTAssertEqual(extraRules, 3 + 3 * 2 + 32 * 3 * 2,
                               "a jump per filter hook; per protocol two shard lookups; per shard chain and protocol an update and a lookup")
                for chain in withCounters.chains where Self.shardChains.contains(chain.name) {
                    let shard = chain.name.split(separator: "-").last.map(String.init) ?? ""
                    let used = Set(chain.rules.flatMap(\.statements).compactMap { statement -> String? in
                        switch statement {
                        case let .updateSet(_, set, _), let .lookup(_, set): return set
                        default: return nil
                        }
                    })
                    XCTAssertEqual(used.count, 2, chain.name)
                    XCTAssertTrue(used.allSatisfy { $0.hasSuffix("-" + shard) }, "\(chain.name) counts in its own shard: \(used)")
                }
                XCTAssertEqual(withCounters.sets.filter { !(Self.countingSets + Self.frontendSets).contains($0.name) }.map(\.withoutElements),
                               without.sets.map(\.withoutElements), "the other sets are declared alike")
            }
        }
    }

    /// A frontend's shard is the same in every process (a fixed hash, not Swift's seeded
    /// one), and frontends spread evenly over the shards.
    func testShardsAreStableAndEven() {
        // The same in every process: FNV-1a of c6 12 00 0a 06 00 50, modulo 16.
        XCTAssertEqual(EndpointTrafficLayout.shard(of: [.address(Fixtures.ip("198.18.0.10")), .proto(6), .port(80)]),
                       Int(Self.fnv1a([0xc6, 0x12, 0x00, 0x0a, 0x06, 0x00, 0x50]) % 16))
        var perShard = Array(repeating: 0, count: EndpointTrafficLayout.shardCount)
        for index in 0..<4096 {
            let address = Fixtures.ip("198.18.\(index / 256).\(index % 256)")
            perShard[EndpointTrafficLayout.shard(of: [.address(address), .proto(6), .port(80)])] += 1
        }
        XCTAssertEqual(perShard.reduce(0, +), 4096)
        XCTAssertLessThan(perShard.max() ?? 0, 2 * 4096 / 16, "no shard holds twice its share: \(perShard)")
        XCTAssertGreaterThan(perShard.min() ?? 0, 4096 / 16 / 2, "no shard holds half its share: \(perShard)")
    }

    private static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        bytes.reduce(0xcbf2_9ce4_8422_2325 as UInt64) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01b3 }
    }

    /// Every backends element names its endpoint's node in its comment, and the frontend's
    /// `service-ips` / `service-nodeports` element its service and port; without counters,
    /// no element has a comment but the frontends' digests (in their own sets).
    func testDispatchAndBackendsElementsNameTheirServiceAndEndpoint() throws {
        let ruleset = compile(counters: true, [Fixtures.echoServer])
        let table = try XCTUnwrap(ruleset.tables.first { $0.family == .ip })
        let backends = table.sets.filter { $0.name.contains("-backends-") }.flatMap(\.elements)
        XCTAssertEqual(backends.map(\.comment), Array(repeating: "node-1 local", count: 6), "3 ClusterIP and 3 NodePort slots")
        let dispatch = table.sets.filter { [RulesetLayout.SetName.serviceIPs, RulesetLayout.SetName.serviceNodePorts].contains($0.name) }
        XCTAssertEqual(dispatch.flatMap(\.elements).map(\.comment), ["default/echo-server http", "default/echo-server http"])
        let read = FrontendTraffic.read(ruleset).flatMap(\.endpoints)
        XCTAssertEqual(read.count, 6)
        XCTAssertTrue(read.allSatisfy { $0.names == EndpointNames(service: Fixtures.echoServer.name, portName: "http",
                                                                   node: "node-1", local: true) })
        XCTAssertTrue(compile(counters: false, [Fixtures.echoServer]).tables.flatMap(\.sets)
            .filter { !FrontendDigest.setNames.contains($0.name) }.flatMap(\.elements).allSatisfy { $0.comment == nil })
        let names = EndpointNames(service: ServiceName(namespace: "a", name: "b"), portName: "", node: nil, local: false)
        XCTAssertEqual(names.serviceComment, "a/b -")
        XCTAssertEqual(names.endpointComment, "- remote")
        XCTAssertEqual(EndpointNames(serviceComment: names.serviceComment, endpointComment: names.endpointComment), names)
        let long = EndpointNames(service: ServiceName(namespace: String(repeating: "n", count: 63), name: String(repeating: "s", count: 63)),
                                 portName: "http", node: String(repeating: "x", count: 253), local: true)
        XCTAssertLessThanOrEqual(long.endpointComment.utf8.count, SetElement.maximumCommentBytes, "cut to nft's limit")
        XCTAssertLessThanOrEqual(long.serviceComment.utf8.count, SetElement.maximumCommentBytes)
        XCTAssertEqual(EndpointNames(serviceComment: long.serviceComment, endpointComment: long.endpointComment)?.service, long.service)
        XCTAssertNil(EndpointNames(serviceComment: "someone else's comment", endpointComment: "node-1 local"))
        XCTAssertNil(EndpointNames(serviceComment: "a/b -", endpointComment: "node-1 elsewhere"))
    }

    func testIncrementalCompilesDeclareTheCountingSetsAsTheFullCompile() throws {
        var node = Fixtures.node
        node.endpointCounters = true
        var compiled = CompiledServices(node: node, map: ServiceMap(services: []))
        let change = compiled.apply(ServiceMap(services: [Fixtures.echoServer]))
        let full = compile(counters: true, [Fixtures.echoServer])
        for table in change.after.tables {
            let whole = try XCTUnwrap(full.table(table.family, table.name))
            for name in Self.countingSets + Self.frontendSets {
                XCTAssertEqual(table.sets.first { $0.name == name }, whole.sets.first { $0.name == name }, name)
            }
            XCTAssertEqual(table.sets.filter { $0.name.contains("-backends-") || $0.name.hasSuffix("-ips") || $0.name.hasSuffix("-nodeports") }
                               .flatMap(\.elements),
                           whole.sets.filter { $0.name.contains("-backends-") || $0.name.hasSuffix("-ips") || $0.name.hasSuffix("-nodeports") }
                               .flatMap(\.elements), "with their names")
        }
    }

    /// Connections from `endpoint-connections-N`, packets and bytes from `endpoint-traffic-N` (as
    /// the kernel reports them, `observed`), each on the endpoint of its pair; an element for
    /// a pair the backends maps do not hold is left out.
    func testReadsCountsPerEndpointFromTheCountingSets() throws {
        var ruleset = compile(counters: true, [Fixtures.echoServer])
        let index = try XCTUnwrap(ruleset.tables.firstIndex { $0.family == .ip })
        let endpoints = ["198.19.1.11", "198.19.1.12", "198.19.1.13"].map { Value.address(Fixtures.ip($0)) }
        let stale = Value.address(Fixtures.ip("198.19.1.99"))
        let clusterIP: [Value] = [.address(Fixtures.ip("198.18.0.10")), .proto(6), .port(80)]
        let nodePort: [Value] = [.proto(6), .port(32000)]
        for setIndex in ruleset.tables[index].sets.indices {
            let name = ruleset.tables[index].sets[setIndex].name
            guard Self.countingSets.contains(name) else { continue }
            let frontend = name.hasPrefix("nodeport-") ? nodePort : clusterIP
            // The packet path counts a frontend's pairs in its shard's sets.
            guard name.hasSuffix("-\(EndpointTrafficLayout.shard(of: frontend))") else { continue }
            let base: UInt64 = (name.hasPrefix("nodeport-") ? 100 : 0) + (name.contains("connections") ? 0 : 1000)
            ruleset.tables[index].sets[setIndex].elements = (endpoints + [stale]).enumerated().map { slot, endpoint in
                var element = SetElement(key: frontend + [endpoint, .port(8080)])
                element.observed = ObservedElement(packets: base + UInt64(slot), bytes: (base + UInt64(slot)) * 60)
                return element
            }
        }
        let traffic = FrontendTraffic.read(ruleset)
        XCTAssertEqual(traffic.map(\.key.description), ["198.18.0.10:80/tcp", "NodePort 32000/tcp (IPv4)"])
        for frontend in traffic {
            let base: UInt64 = frontend.kind == .nodePort ? 100 : 0
            XCTAssertEqual(frontend.endpoints.map(\.address), ["198.19.1.11", "198.19.1.12", "198.19.1.13"], "not the stale pair")
            XCTAssertEqual(frontend.endpoints.map(\.connections), [base, base + 1, base + 2])
            XCTAssertEqual(frontend.endpoints.map(\.packets), [base + 1000, base + 1001, base + 1002])
            XCTAssertEqual(frontend.endpoints.map(\.bytes), [base + 1000, base + 1001, base + 1002].map { $0 * 60 })
            XCTAssertTrue(frontend.endpoints.allSatisfy { $0.names?.service == Fixtures.echoServer.name })
        }
    }

    /// When an endpoint leaves, its pairs' counting elements are retired (destroyed: the
    /// packet path may or may not have made them), in the full diff and in the incremental
    /// one; an endpoint that only changes slot keeps them; no other element is touched.
    func testAnEndpointThatLeavesHasItsCountingElementsRetired() throws {
        var moved = Fixtures.echoServer
        moved.ports[0].endpoints[0].address = Fixtures.ip("198.19.1.99")
        let before = compile(counters: true, [Fixtures.echoServer])
        let after = compile(counters: true, [moved])
        var node = Fixtures.node
        node.endpointCounters = true
        var compiled = CompiledServices(node: node, map: ServiceMap(services: [Fixtures.echoServer]))
        let change = compiled.apply(ServiceMap(services: [moved]))
        for (current, desired) in [(before, after), (change.before, change.after)] {
            let transaction = TableDiff.transaction(from: current, to: desired)
            var retired: [String: [[Value]]] = [:]
            for operation in transaction.operations {
                if case let .destroyElements(family, _, set, elements) = operation, family == .ip {
                    retired[set.name, default: []] += elements.map(\.key)
                }
            }
            let gone = Value.address(Fixtures.ip("198.19.1.11"))
            let clusterIP: [Value] = [.address(Fixtures.ip("198.18.0.10")), .proto(6), .port(80)]
            let nodePort: [Value] = [.proto(6), .port(32000)]
            let service = EndpointTrafficLayout.shard(of: clusterIP), node = EndpointTrafficLayout.shard(of: nodePort)
            // Only in the shard of each frontend.
            XCTAssertEqual(retired, [
                "endpoint-connections-\(service)": [clusterIP + [gone, .port(8080)]],
                "endpoint-traffic-\(service)": [clusterIP + [gone, .port(8080)]],
                "nodeport-endpoint-connections-\(node)": [nodePort + [gone, .port(8080)]],
                "nodeport-endpoint-traffic-\(node)": [nodePort + [gone, .port(8080)]],
            ])
        }
        var reordered = Fixtures.echoServer
        reordered.ports[0].endpoints.removeFirst()
        reordered.ports[0].endpoints.append(Fixtures.echoServer.ports[0].endpoints[0])
        reordered.ports[0].endpoints.insert(Endpoint(address: Fixtures.ip("198.19.1.10"), port: 8080, nodeName: "node-1"), at: 0)
        let grown = TableDiff.transaction(from: before, to: compile(counters: true, [reordered]))
        XCTAssertFalse(grown.operations.contains { if case .destroyElements = $0 { return true } else { return false } },
                       "a fourth endpoint moves the others to new slots, but every pair stays")
        XCTAssertTrue(TableDiff.transaction(from: before, to: before).isEmpty)
    }

    /// After a read-back (the kernel's counting elements known), elements of pairs the new
    /// ruleset does not hold are retired, and the sync's view of the kernel drops them.
    func testElementsReadBackForGonePairsAreRetired() throws {
        var current = compile(counters: true, [Fixtures.echoServer, Fixtures.web])
        let desired = compile(counters: true, [Fixtures.web])
        let index = try XCTUnwrap(current.tables.firstIndex { $0.family == .ip })
        let shard = EndpointTrafficLayout.shard(of: [.address(Fixtures.ip("198.18.0.10")), .proto(6), .port(80)])
        let counting = EndpointTrafficLayout.setName(nodePort: false, .traffic, shard: shard)
        let setIndex = try XCTUnwrap(current.tables[index].sets.firstIndex { $0.name == counting })
        let echo = SetElement(key: [.address(Fixtures.ip("198.18.0.10")), .proto(6), .port(80),
                                    .address(Fixtures.ip("198.19.1.12")), .port(8080)])
        let webBackend = try XCTUnwrap(desired.tables[index].sets.first { $0.name.contains("-backends-") }?.elements.first)
        guard case let .values(endpoint)? = webBackend.data else { return XCTFail("\(webBackend)") }
        let web = SetElement(key: Array(webBackend.key.dropLast()) + endpoint)
        current.tables[index].sets[setIndex].elements = [echo, web]
        let transaction = TableDiff.transaction(from: current.tables[index], to: desired.tables[index])
        let destroyed = transaction.operations.flatMap { operation -> [SetElement] in
            guard case let .destroyElements(_, _, set, elements) = operation, set.name == counting
            else { return [] }
            return Array(elements)
        }
        XCTAssertTrue(destroyed.contains(echo))
        XCTAssertFalse(destroyed.contains(web), "web's pair stays")
        let result = TableDiff.result(from: current.tables[index], to: desired.tables[index])
        XCTAssertEqual(result.sets.first { $0.name == counting }?.elements, [web])
    }

    /// A daemon reads its metrics from the map it programmed and the counting sets alone:
    /// the same frontends, endpoints (in the same order), counts and names as a read of the
    /// whole compiled ruleset, on random maps with every traffic policy, conflicts and hints.
    func testTheProgrammedMapNamesTheCountsAsTheRulesetDoes() throws {
        var random = RandomServices(seed: 20261202)
        var node = Fixtures.node
        node.endpointCounters = true
        node.zone = "zone-a"
        for round in 0..<20 {
            let map = random.map(size: 40)
            var ruleset = Compiler(node: node).compile(map).ruleset
            var filled = 0
            for tableIndex in ruleset.tables.indices {
                let table = ruleset.tables[tableIndex]
                let derived = DerivedKeys(table)
                for setIndex in table.sets.indices {
                    let name = table.sets[setIndex].name
                    guard let measure = EndpointTrafficLayout.measure(ofSet: name) else { continue }
                    // Every other pair counted (the pair keys of a set are those of its shard's frontends).
                    let pairs = derived.pairKeys(of: name, in: table) ?? []
                    XCTAssertTrue(pairs.allSatisfy { name.hasSuffix("-\(EndpointTrafficLayout.shard(of: Array($0.dropLast(2))))") },
                                  "\(name) can only hold pairs of its shard")
                    let keys = pairs.enumerated().filter { index, _ in index % 2 == 0 }
                    ruleset.tables[tableIndex].sets[setIndex].elements = keys.map { index, key in
                        var element = SetElement(key: key)
                        let count = UInt64(index + 1) * (measure == .connections ? 1 : 10)
                        element.observed = ObservedElement(packets: count, bytes: count * 100)
                        return element
                    }
                    filled += keys.count
                }
            }
            let fromRuleset = FrontendTraffic.read(ruleset)
            let fromMap = FrontendTraffic.read(map, node: node, counted: ruleset)
            XCTAssertEqual(fromMap.map(\.key), fromRuleset.map(\.key), "round \(round): the frontends; only the map's: \(Set(fromMap.map(\.key)).subtracting(fromRuleset.map(\.key))), only the ruleset's: \(Set(fromRuleset.map(\.key)).subtracting(fromMap.map(\.key)))")
            for (mine, theirs) in zip(fromMap, fromRuleset) where mine != theirs {
                XCTFail("round \(round), \(mine.key): \(mine.endpoints) differs from the ruleset's \(theirs.endpoints)")
            }
            XCTAssertGreaterThan(filled, 0, "round \(round) counted something")
            XCTAssertTrue(fromMap.flatMap(\.endpoints).contains { $0.connections > 0 })
        }
    }

    /// Open connections land on the frontend of their original destination, or on the
    /// NodePort of its port when the address is no frontend (a node address); others are
    /// not counted. Read with the ruleset, every endpoint gets a number.
    func testOpenConnectionsAreCountedPerFrontendAndEndpoint() throws {
        let ruleset = compile(counters: true, [Fixtures.echoServer])
        let frontends = Set(ProgrammedFrontend.read(ruleset).keys)
        let endpoint = ProgrammedFrontend.Target(address: Fixtures.ip("198.19.1.12"), port: 8080)
        var open = OpenConnections()
        open.count(address: Fixtures.ip("198.18.0.10"), transport: .tcp, port: 80, endpoint: endpoint, frontends: frontends)
        open.count(address: Fixtures.ip("192.0.2.10"), transport: .tcp, port: 32000, endpoint: endpoint, frontends: frontends)
        open.count(address: Fixtures.ip("192.0.2.10"), transport: .tcp, port: 32000, endpoint: endpoint, frontends: frontends)
        open.count(address: Fixtures.ip("192.0.2.10"), transport: .udp, port: 32000, endpoint: endpoint, frontends: frontends)
        open.count(address: Fixtures.ip("198.18.0.99"), transport: .tcp, port: 80, endpoint: endpoint, frontends: frontends)
        let traffic = FrontendTraffic.read(ruleset, open: open)
        XCTAssertEqual(traffic.map { $0.endpoints.map(\.open) }, [[0, 1, 0], [0, 2, 0]], "ClusterIP, then the NodePort")
        XCTAssertTrue(FrontendTraffic.read(ruleset).flatMap(\.endpoints).allSatisfy { $0.open == nil }, "not asked: unknown")
        let port = try XCTUnwrap(ServicePortTraffic.group(FrontendTraffic.read(ruleset, open: open)).first)
        XCTAssertEqual(port.endpoints.map(\.open), [0, 3, 0], "summed over the port's frontends")
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
