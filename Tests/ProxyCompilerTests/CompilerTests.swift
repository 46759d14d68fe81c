import XCTest
import Nftables
import ServiceModel
@testable import ProxyCompiler

/// Properties of the compiled ruleset that do not depend on its exact text.
final class CompilerTests: XCTestCase {
    private func table(_ family: TableFamily, _ map: ServiceMap, node: NodeConfig = Fixtures.node) -> Table {
        Compiler(node: node).compile(map).ruleset.table(family, RulesetLayout.tableName)!
    }

    private func set(_ table: Table, _ name: String) -> NamedSet? { table.sets.first { $0.name == name } }

    func testCompilingIsDeterministic() {
        let map = ServiceMap(services: [Fixtures.web, Fixtures.dns, Fixtures.echoServer])
        let shuffled = ServiceMap(services: [Fixtures.echoServer, Fixtures.web, Fixtures.dns])
        XCTAssertEqual(Compiler(node: Fixtures.node).compile(map).ruleset,
                       Compiler(node: Fixtures.node).compile(shuffled).ruleset)
    }

    /// docs/kernel.md, rule 2: every named map is referenced from a constant number of rules,
    /// however many services there are; rule 1: no per-service chain or set.
    func testRuleAndChainCountsDoNotGrowWithServices() {
        func services(_ count: Int) -> ServiceMap {
            let endpoints = Fixtures.endpoints(["198.19.1.11", "198.19.1.12"], port: 8080)
            var list: [Service] = []
            for index in 0..<count {
                let address = IPAddress(bytes: [198, 18, UInt8(index / 250), UInt8(1 + index % 250)])!
                let port = ServicePort(name: "", transport: .tcp, port: 80, nodePort: UInt16(30000 + index),
                                       endpoints: endpoints)
                list.append(Service(name: ServiceName(namespace: "bulk", name: "svc-\(index)"),
                                    clusterIPs: [address], ports: [port]))
            }
            return ServiceMap(services: list)
        }
        let small = table(.ip, services(3))
        let large = table(.ip, services(600))
        XCTAssertEqual(small.chains.count, large.chains.count)
        XCTAssertEqual(small.sets.count, large.sets.count)
        XCTAssertEqual(small.chains.flatMap(\.rules).count, large.chains.flatMap(\.rules).count)
        XCTAssertEqual(set(large, "service-backends-2")?.elements.count, 1200)
        XCTAssertEqual(set(large, "service-ips")?.elements.count, 600)
    }

    /// The same with traffic policies Local: a third of the services externalTrafficPolicy
    /// Local (with a LB IP), a third internalTrafficPolicy Local, endpoints on this node and
    /// another, and most with sessionAffinity (two timeouts); every set and map is referenced
    /// by as many rules at 6 as at 600 services.
    func testRuleAndChainCountsDoNotGrowWithServicesUnderLocalPolicies() {
        func services(_ count: Int) -> ServiceMap {
            let endpoints = Fixtures.endpoints(["198.19.1.11"], port: 8080)
                + Fixtures.endpoints(["198.19.2.12", "198.19.2.13"], port: 8080, node: "node-2")
            var list: [Service] = []
            for index in 0..<count {
                let address = IPAddress(bytes: [198, 18, UInt8(index / 250), UInt8(1 + index % 250)])!
                let balancer = IPAddress(bytes: [203, 0, UInt8(index / 250), UInt8(1 + index % 250)])!
                let port = ServicePort(name: "", transport: .tcp, port: 80, nodePort: UInt16(30000 + index),
                                       endpoints: index % 6 == 0 ? [] : endpoints)
                list.append(Service(name: ServiceName(namespace: "bulk", name: "svc-\(index)"),
                                    clusterIPs: [address], loadBalancerIPs: index % 3 == 0 ? [balancer] : [],
                                    ports: [port], externalTrafficPolicy: index % 3 == 0 ? .local : .cluster,
                                    internalTrafficPolicy: index % 3 == 1 ? .local : .cluster,
                                    sessionAffinityTimeout: index % 5 == 4 ? nil : [600, 10800][index % 2]))
            }
            return ServiceMap(services: list)
        }
        func references(_ table: Table) -> [String: Int] {
            var counts: [String: Int] = [:]
            for rule in table.chains.flatMap(\.rules) {
                for statement in rule.statements {
                    switch statement {
                    case .lookup(_, let name), .verdictMap(_, let name), .dnatMap(_, let name, _), .updateSet(_, let name, _),
                         .updateMap(_, _, let name, _), .deleteFromMap(_, _, let name): counts[name, default: 0] += 1
                    default: continue
                    }
                }
            }
            return counts
        }
        let small = table(.ip, services(6))
        let large = table(.ip, services(600))
        XCTAssertEqual(small.chains.map(\.name).sorted(), large.chains.map(\.name).sorted())
        XCTAssertEqual(small.sets.map(\.name).sorted(), large.sets.map(\.name).sorted())
        XCTAssertEqual(small.chains.flatMap(\.rules).count, large.chains.flatMap(\.rules).count)
        XCTAssertEqual(references(small), references(large))
        // The affinity maps: 3 DNAT or update rules per kind or timeout, and 3 releases; a
        // validation set per timeout and kind, each looked up by 3 rules (one per protocol).
        XCTAssertTrue(large.sets.allSatisfy { (references(large)[$0.name] ?? 0) <= ($0.flags.contains(.dynamic) ? 15 : 3) },
                      "\(references(large))")
        XCTAssertTrue(large.chains.contains { $0.name == "affinity-local" }, "\(large.chains.map(\.name))")
        for name in ["affinity-endpoints-600", "affinity-endpoints-10800", "nodeport-affinity-endpoints-600",
                     "nodeport-affinity-endpoints-10800"] {
            XCTAssertEqual(references(large)[name], 3, name)
            XCTAssertEqual(set(large, name).map { $0.data == nil }, true, "\(name): a plain set (no jump-graph validation at commit)")
        }
        XCTAssertEqual(set(large, "local-policy-ips")?.elements.count, 100, "the LB IPs of Local services with endpoints")
        XCTAssertEqual(set(large, "local-backends-1")?.elements.count, 100)
        XCTAssertTrue(large.chains.contains { $0.name == "external-local-policy" })
        print("Local policies, ip table: \(large.chains.count) chains, \(large.chains.flatMap(\.rules).count) rules, "
              + "\(large.sets.count) sets at 600 services (as at 6)")
    }

    /// Topology hints: followed when every ready endpoint has one and one is for this zone
    /// (node hints before zone hints); otherwise, without a zone, or for a fallback list of
    /// terminating endpoints, every endpoint; never for the lists of a Local policy.
    func testTopologyHintsAreFollowedOnlyWhenCompleteAndMatching() {
        func endpoint(_ last: Int, zones: [String], ready: Bool = true, node: String = "node-2") -> Endpoint {
            Endpoint(address: Fixtures.ip("198.19.2.\(last)"), port: 80, ready: ready, serving: true, terminating: !ready,
                     nodeName: node, zoneHints: zones)
        }
        let complete = [endpoint(1, zones: ["zone-a"]), endpoint(2, zones: ["zone-b"]), endpoint(3, zones: ["zone-a", "zone-b"])]
        XCTAssertEqual(preferringClose(complete, node: "node-1", zone: "zone-a").map(\.address.description),
                       ["198.19.2.1", "198.19.2.3"])
        XCTAssertEqual(preferringClose(complete, node: "node-1", zone: nil), complete, "no zone: no hint applies")
        XCTAssertEqual(preferringClose(complete, node: "node-1", zone: "zone-c"), complete, "none for this zone")
        let partial = complete + [endpoint(4, zones: [])]
        XCTAssertEqual(preferringClose(partial, node: "node-1", zone: "zone-a"), partial, "one ready endpoint without a hint")
        let terminating = complete.map { var copy = $0; copy.ready = false; copy.terminating = true; return copy }
        XCTAssertEqual(preferringClose(terminating, node: "node-1", zone: "zone-a"), terminating)
        var nodeHinted = complete
        nodeHinted[1].nodeHints = ["node-1"]; nodeHinted[0].nodeHints = ["node-2"]; nodeHinted[2].nodeHints = ["node-3"]
        XCTAssertEqual(preferringClose(nodeHinted, node: "node-1", zone: "zone-a").map(\.address.description), ["198.19.2.2"])

        // A Local policy's list is the node's own, unfiltered.
        var service = Service(name: ServiceName(namespace: "t", name: "local"), clusterIPs: [Fixtures.ip("198.18.0.5")],
                              ports: [ServicePort(name: "", transport: .tcp, port: 80, endpoints: [
                                endpoint(1, zones: ["zone-b"], node: "node-1"), endpoint(2, zones: ["zone-a"]),
                              ])])
        service.internalTrafficPolicy = .local
        let clusterIP = frontends(of: service, family: .v4, node: "node-1", zone: "zone-a")[0]
        XCTAssertEqual(clusterIP.endpoints.map(\.address.description), ["198.19.2.2"])
        XCTAssertEqual(clusterIP.local?.map(\.address.description), ["198.19.2.1"])
    }

    /// Services sharing a LoadBalancer IP and port (DNS over TCP and UDP as two services)
    /// share its source ranges: the kernel refuses overlapping ranges, so only the outermost
    /// are elements; removing the wider one uncovers the narrower (incrementally too).
    func testSourceRangesOfAPortAreTheOutermostOfEveryServiceSharingIt() {
        func dns(_ name: String, _ transport: TransportProtocol, _ ranges: [String]) -> Service {
            Service(name: ServiceName(namespace: "dns", name: name), clusterIPs: [Fixtures.ip("198.18.0.53")],
                    loadBalancerIPs: [Fixtures.ip("203.0.113.53")],
                    ports: [ServicePort(name: "dns", transport: transport, port: 53,
                                        endpoints: Fixtures.endpoints(["198.19.1.53"], port: 5353))],
                    loadBalancerSourceRanges: ranges.map { CIDR($0)! })
        }
        let tcp = dns("dns-tcp", .tcp, ["10.0.0.0/16", "172.16.0.0/12"]), udp = dns("dns-udp", .udp, ["10.0.0.0/8"])
        func ranges(_ table: Table) -> [String] {
            (set(table, "source-ranges")?.elements ?? []).map { ScriptRenderer().render($0) }.sorted()
        }
        let both = ServiceMap(services: [tcp, udp]), tcpOnly = ServiceMap(services: [tcp])
        XCTAssertEqual(ranges(table(.ip, both)), ["203.0.113.53 . 53 . 10.0.0.0/8", "203.0.113.53 . 53 . 172.16.0.0/12"])
        XCTAssertEqual(ranges(table(.ip, tcpOnly)), ["203.0.113.53 . 53 . 10.0.0.0/16", "203.0.113.53 . 53 . 172.16.0.0/12"])

        var compiled = CompiledServices(node: Fixtures.node, map: both)
        let change = compiled.apply(tcpOnly)
        XCTAssertEqual(ranges(change.before.table(.ip, RulesetLayout.tableName)!),
                       ["203.0.113.53 . 53 . 10.0.0.0/8", "203.0.113.53 . 53 . 172.16.0.0/12"])
        XCTAssertEqual(ranges(change.after.table(.ip, RulesetLayout.tableName)!),
                       ["203.0.113.53 . 53 . 10.0.0.0/16", "203.0.113.53 . 53 . 172.16.0.0/12"])
        XCTAssertEqual(change.counts[.ip]?["source-ranges"], 2)
    }

    func testServiceWithoutEndpointsIsRejectedNotBalanced() {
        let ip = table(.ip, ServiceMap(services: [Fixtures.empty]))
        XCTAssertEqual(set(ip, "no-endpoint-services")?.elements,
                       [SetElement(key: [.address(Fixtures.ip("198.18.0.99")), .proto(6), .port(80)])])
        XCTAssertEqual(set(ip, "no-endpoint-nodeports")?.elements, [SetElement(key: [.proto(6), .port(30080)])])
        XCTAssertEqual(set(ip, "service-ips")?.elements, [])
    }

    func testTerminatingServingEndpointsAreUsedOnlyWhenNoneIsReady() {
        let ip = table(.ip, ServiceMap(services: [Fixtures.draining]))
        XCTAssertEqual(set(ip, "service-backends-1")?.elements.map(\.data),
                       [.values([.address(Fixtures.ip("198.19.1.41")), .port(80)])])
    }

    func testFamiliesAreSeparated() {
        let map = ServiceMap(services: [Fixtures.web])
        let ip6 = table(.ip6, map)
        let backends = set(ip6, "service-backends-1")!.elements
        XCTAssertEqual(backends.count, 2, "one IPv6 endpoint for each of the two IPv6 frontends (ClusterIP, LB IP)")
        XCTAssertTrue(backends.allSatisfy { $0.data == .values([.address(Fixtures.ip("2001:db8:1:1::31")), .port(8443)]) })
        // The SCTP port has only an IPv4 endpoint: rejected in IPv6.
        XCTAssertEqual(set(ip6, "no-endpoint-services")?.elements.count, 2)
    }

    func testConflictingFrontendsKeepTheFirstServiceAndWarn() {
        var other = Fixtures.web
        other.name = ServiceName(namespace: "zz", name: "copycat")
        other.clusterIPs = [Fixtures.ip("198.18.0.21")]
        let compilation = Compiler(node: Fixtures.node).compile(ServiceMap(services: [other, Fixtures.web]))
        let lost = compilation.warnings.first { $0.frontend == FrontendKey(address: Fixtures.ip("203.0.113.7"), transport: .tcp, port: 443) }
        XCTAssertEqual(lost?.code, .frontendConflict, "\(compilation.warnings)")
        XCTAssertEqual(lost?.object.serviceName, other.name)
        XCTAssertEqual(lost?.related?.serviceName, Fixtures.web.name)
        let serviceIPs = compilation.ruleset.table(.ip, RulesetLayout.tableName)!.sets.first { $0.name == "service-ips" }!
        let keys = serviceIPs.elements.map(\.key)
        XCTAssertEqual(keys.count, Set(keys).count, "map keys must be unique")
    }
}

extension CompilerTests {
    /// kube-proxy: a family for which --nodeport-addresses names no range answers everywhere.
    func testNodePortAddressesOfOneFamilyLeaveTheOtherFamilyOpen() {
        var node = Fixtures.node
        node.nodePortAddresses = [CIDR("192.0.2.10/32")!]
        let compilation = Compiler(node: node).compile(ServiceMap(services: [Fixtures.web]))
        let renderer = ScriptRenderer()
        let services = { (family: TableFamily) in
            compilation.ruleset.table(family, RulesetLayout.tableName)!.chains.first { $0.name == "services" }!.rules.map(renderer.render)
        }
        XCTAssertTrue(services(.ip).contains("fib daddr type local ip daddr 192.0.2.10 meta l4proto . th dport vmap @service-nodeports"))
        XCTAssertTrue(services(.ip6).contains("fib daddr type local ip6 daddr != ::1 meta l4proto . th dport vmap @service-nodeports"))
    }
}

extension CompilerTests {
    func testHairpinEntriesOnlyForEndpointsThatMayBeLocal() {
        var service = Fixtures.echoServer
        service.ports[0].endpoints = [
            Endpoint(address: Fixtures.ip("198.19.1.11"), port: 8080, nodeName: "node-1"),
            Endpoint(address: Fixtures.ip("198.19.2.11"), port: 8080, nodeName: "node-2"),
            Endpoint(address: Fixtures.ip("198.19.3.11"), port: 8080, nodeName: nil),
        ]
        let hairpin = { (node: NodeConfig) in
            Compiler(node: node).compile(ServiceMap(services: [service])).ruleset
                .table(.ip, RulesetLayout.tableName)!.sets.first { $0.name == "hairpin-endpoints" }!.elements
                .map { ScriptRenderer().render($0) }
        }
        XCTAssertEqual(hairpin(Fixtures.node), ["198.19.1.11 . 198.19.1.11", "198.19.3.11 . 198.19.3.11"])
        XCTAssertEqual(hairpin(NodeConfig()).count, 3, "without --node-name every endpoint may be local")
    }
}
