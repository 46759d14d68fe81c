import Foundation
@testable import Netlink
@testable import Nftables
import ProxyCompiler
import ProxyEngine
import ServiceModel
import ServiceTestSupport
import XCTest

/// The read-back that looks the backends maps' elements up by key (derived from the verdict
/// maps) against the one that dumps every set: the same tables, the same counters, missing
/// elements found, and no dump of a map it can look up.
final class DerivedKeyReadBackTests: XCTestCase {
    private var namespaces: [TestNamespace] = []

    override func setUpWithError() throws {
        guard geteuid() == 0 else { throw XCTSkip("requires root: kernel tests program private network namespaces") }
    }

    override func tearDown() {
        namespaces.forEach { $0.remove() }
        namespaces = []
    }

    private func namespace(_ purpose: String) throws -> TestNamespace {
        let namespace = try TestNamespace(purpose)
        namespaces.append(namespace)
        return namespace
    }

    private let node = NodeConfig(nodeName: "node-1", clusterCIDRs: [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])

    private func isBackendsMap(_ name: String) -> Bool {
        name.hasPrefix(RulesetLayout.SetName.serviceBackendsPrefix)
            || name.hasPrefix(RulesetLayout.SetName.nodePortBackendsPrefix) || name.contains("local-backends-")
    }

    /// Elements keyed by their key's text, with what the kernel counted.
    private func elements(_ set: NamedSet) -> [String: (SetElement, ObservedElement?)] {
        Dictionary(set.elements.map { ("\($0.key)", ($0, $0.observed)) }, uniquingKeysWith: { first, _ in first })
    }

    /// Reads `family`'s table both ways through fresh sockets; checks they agree set by set
    /// (elements, data and counters) and that the fast read dumped no backends map.
    @discardableResult
    private func compareReads(_ target: TestNamespace, _ family: TableFamily, file: StaticString = #filePath, line: UInt = #line) throws -> (fast: Table, dumped: Table)? {
        let dumpSocket = try NetlinkSocket(namespace: try NetworkNamespace(named: target.name))
        let fastSocket = try NetlinkSocket(namespace: try NetworkNamespace(named: target.name))
        guard let dumped = try KernelReader(socket: dumpSocket, elements: .dumpEverySet).read(family, RulesetLayout.tableName),
              let fast = try KernelReader(socket: fastSocket).read(family, RulesetLayout.tableName) else {
            XCTFail("no \(family) table", file: file, line: line)
            return nil
        }
        XCTAssertEqual(fast.problems, [], file: file, line: line)
        XCTAssertEqual(fast.table.chains, dumped.table.chains, file: file, line: line)
        XCTAssertEqual(fast.table.sets.map(\.name), dumped.table.sets.map(\.name), file: file, line: line)
        for (fastSet, dumpedSet) in zip(fast.table.sets, dumped.table.sets) {
            XCTAssertEqual(fastSet.withoutElements, dumpedSet.withoutElements, file: file, line: line)
            XCTAssertEqual(fastSet.elements.count, dumpedSet.elements.count,
                           "\(fastSet.name)", file: file, line: line)
            let expected = elements(dumpedSet)
            for (key, (element, observed)) in elements(fastSet) {
                XCTAssertEqual(element, expected[key]?.0, "\(fastSet.name) \(key)", file: file, line: line)
                XCTAssertEqual(observed, expected[key]?.1, "\(fastSet.name) \(key): counters", file: file, line: line)
            }
        }
        let backends = fast.table.sets.map(\.name).filter(isBackendsMap)
        XCTAssertEqual(fastSocket.elementDumps.filter(isBackendsMap), [], "the fast read dumped a backends map",
                       file: file, line: line)
        // The counting sets hold what the packet path made: dumped, as every dynamic set.
        let counting = Set(fast.table.sets.map(\.name).filter { EndpointTrafficLayout.measure(ofSet: $0) != nil })
        XCTAssertEqual(Set(fastSocket.elementDumps.filter(counting.contains)), counting, file: file, line: line)
        XCTAssertEqual(Set(dumpSocket.elementDumps), Set(dumped.table.sets.map(\.name)), file: file, line: line)
        if fast.table.sets.contains(where: { isBackendsMap($0.name) && !$0.elements.isEmpty }) {
            XCTAssertGreaterThan(fastSocket.elementLookupRequests, 0, "\(backends)", file: file, line: line)
        }
        return (fast.table, dumped.table)
    }

    func testLookedUpElementsEqualTheDumpOnRandomRulesetsWithCountersAndNames() throws {
        let target = try namespace("derived-random")
        let client = try NftablesClient(networkNamespace: target.name)
        var random = RandomServices(seed: 20261201)
        var previous: Ruleset?
        for round in 0..<6 {
            let desired = Compiler(node: node).compile(random.map(size: 30)).ruleset
            XCTAssertTrue(desired.tables.contains { $0.sets.contains { isBackendsMap($0.name) && $0.elements.contains { $0.comment != nil } } })
            var transaction = Transaction()
            for table in desired.tables {
                transaction.append(contentsOf: TableDiff.transaction(from: previous?.table(table.family, table.name), to: table))
            }
            try client.commit(transaction)
            previous = desired
            // Some counted traffic: a pair's element with counter values of its own (nft writes them).
            if round == 0, let table = desired.table(.ip, RulesetLayout.tableName),
               let map = table.sets.first(where: { $0.name.hasPrefix(RulesetLayout.SetName.serviceBackendsPrefix)
                   && !$0.elements.isEmpty }),
               let element = map.elements.first, case let .values(endpoint)? = element.data {
                let pair = Array(element.key.dropLast()) + endpoint
                let countingSet = EndpointTrafficLayout.setName(
                    nodePort: false, .traffic, shard: EndpointTrafficLayout.shard(of: Array(element.key.dropLast())))
                let key = pair.map { ScriptRenderer().render($0) }.joined(separator: " . ")
                try target.run(["nft", "add", "element", "ip", table.name, countingSet,
                                "{ \(key) counter packets 7 bytes 420 }"]).check()
                let read = try XCTUnwrap(try compareReads(target, .ip))
                let counted = read.fast.sets.first { $0.name == countingSet }?.elements.first { $0.key == pair }
                XCTAssertEqual(counted?.observed?.packets, 7)
                XCTAssertEqual(counted?.observed?.bytes, 420)
                // The sync's reader leaves what the packet path counted alone.
                let syncSocket = try NetlinkSocket(namespace: try NetworkNamespace(named: target.name))
                let forSync = try XCTUnwrap(try KernelReader(socket: syncSocket, readsCounts: false).read(.ip, table.name))
                XCTAssertEqual(forSync.table.sets.first { $0.name == countingSet }?.elements, [])
                XCTAssertFalse(syncSocket.elementDumps.contains(countingSet))
            }
            for family in TableFamily.allCases { try compareReads(target, family) }
        }
    }

    /// Thousands of keys: several requests per round and several rounds, with elements
    /// missing at the start, middle and end of requests (each stops its request; the keys
    /// after it are asked again).
    func testMissingElementsAreLeftOutAndTheRestIsRead() throws {
        let target = try namespace("derived-missing")
        let desired = Compiler(node: node).compile(GeneratedServiceMaps.threeEndpointServices(1_800)).ruleset
        let client = try NftablesClient(networkNamespace: target.name)
        var transaction = Transaction()
        desired.tables.forEach { transaction.create($0) }
        try client.commit(transaction)

        let removed = ["198.18.0.1 . tcp . 80 . 0", "198.18.0.1 . tcp . 80 . 1", "198.18.3.17 . tcp . 80 . 2",
                       "198.18.7.50 . tcp . 80 . 1", "198.18.7.50 . tcp . 80 . 2"]
        try target.run(["nft", "delete", "element", "ip", "nftproxy", "service-backends-3",
                        "{ \(removed.joined(separator: ", ")) }"]).check()
        try target.run(["nft", "delete", "element", "ip", "nftproxy", "nodeport-backends-3", "{ tcp . 31799 . 2 }"]).check()

        let read = try XCTUnwrap(try compareReads(target, .ip))
        let backends = try XCTUnwrap(read.fast.sets.first { $0.name == "service-backends-3" })
        XCTAssertEqual(backends.elements.count, 1_800 * 3 - removed.count)
        let nodePorts = try XCTUnwrap(read.fast.sets.first { $0.name == "nodeport-backends-3" })
        XCTAssertEqual(nodePorts.elements.count, 1_800 * 3 - 1)

        // A fresh sync puts exactly those back.
        let repair = try RulesetSync(kernel: try NetlinkKernel(networkNamespace: target.name)).sync(to: desired)
        XCTAssertEqual(repair.elementsAdded, removed.count + 1, "\(repair.summaries)")
        XCTAssertEqual(repair.elementsRemoved, 0, "\(repair.summaries)")
        let again = try RulesetSync(kernel: try NetlinkKernel(networkNamespace: target.name)).sync(to: desired)
        XCTAssertEqual(again.operations, 0, "\(again.summaries)")
    }

    /// An element no packet can reach (a slot beyond the modulus, or a frontend no verdict
    /// map sends to the chain) is not looked up; only a dump of every set finds it.
    func testAnUnreachableElementIsFoundOnlyByTheDump() throws {
        let target = try namespace("derived-extra")
        let desired = Compiler(node: node).compile(GeneratedServiceMaps.threeEndpointServices(4)).ruleset
        try RulesetSync(kernel: try NetlinkKernel(networkNamespace: target.name)).sync(to: desired)
        try target.run(["nft", "add", "element", "ip", "nftproxy", "nodeport-backends-3",
                        "{ tcp . 30001 . 7 : 198.19.9.9 . 8080, tcp . 39999 . 0 : 198.19.9.9 . 8080 }"]).check()

        let socket = try NetlinkSocket(namespace: try NetworkNamespace(named: target.name))
        let fast = try XCTUnwrap(try KernelReader(socket: socket).read(.ip, "nftproxy"))
        let dumped = try XCTUnwrap(try KernelReader(socket: socket, elements: .dumpEverySet).read(.ip, "nftproxy"))
        let count = { (table: Table) in table.sets.first { $0.name == "nodeport-backends-3" }?.elements.count }
        XCTAssertEqual(count(fast.table), 12)
        XCTAssertEqual(count(dumped.table), 14)
        XCTAssertEqual(try RulesetSync(kernel: try NetlinkKernel(networkNamespace: target.name)).sync(to: desired).operations, 0)
    }

    /// A table with something the reader does not understand is dumped set by set: the
    /// keys might not follow from rules it could not read.
    func testATableWithAForeignRuleIsDumped() throws {
        let target = try namespace("derived-foreign")
        let desired = Compiler(node: node).compile(GeneratedServiceMaps.threeEndpointServices(4)).ruleset
        try RulesetSync(kernel: try NetlinkKernel(networkNamespace: target.name)).sync(to: desired)
        try target.run(["nft", "add", "rule", "ip", "nftproxy", "services", "ip saddr 10.0.0.1 limit rate 10/second accept"]).check()
        let socket = try NetlinkSocket(namespace: try NetworkNamespace(named: target.name))
        let readBack = try XCTUnwrap(try KernelReader(socket: socket).read(.ip, "nftproxy"))
        XCTAssertEqual(readBack.untrustedChains, ["services"])
        XCTAssertTrue(socket.elementDumps.contains("service-backends-3"), "\(socket.elementDumps)")
        XCTAssertEqual(socket.elementLookupRequests, 0)
    }
}
