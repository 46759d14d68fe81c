import Foundation
import Netlink
@testable import Nftables
import ProxyCompiler
import ProxyEngine
import ServiceModel
import ServiceTestSupport
import XCTest

/// The sync engine against the kernel: read-back fidelity, no-op re-syncs, repair of changes made
/// with `nft`, and the kernel's refusal of stale batches (the engine's logic itself is tested
/// against the in-memory kernel in ProxyEngineTests).
final class SyncTests: XCTestCase {
    private var target: TestNamespace!

    override func setUpWithError() throws {
        guard geteuid() == 0 else { throw XCTSkip("requires root: kernel tests program private network namespaces") }
        target = try TestNamespace("sync")
    }

    override func tearDown() { target?.remove() }

    private let node = NodeConfig(nodeName: "node-1", clusterCIDRs: [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])

    /// `count` services with three endpoints each and a NodePort.
    private func services(_ count: Int, replacing: (service: Int, endpoint: String)? = nil) -> ServiceMap {
        GeneratedServiceMaps.threeEndpointServices(count, replacing: replacing)
    }

    private func compile(_ map: ServiceMap) -> Ruleset { Compiler(node: node).compile(map).ruleset }

    private func sorted(_ table: Table) -> Table {
        var copy = table
        copy.sets = copy.sets.map { var set = $0; set.elements.sort { "\($0)" < "\($1)" }; return set }
            .sorted { $0.name < $1.name }
        copy.chains.sort { $0.name < $1.name }
        return copy
    }

    func testReadBackReturnsExactlyWhatWasCommitted() throws {
        let desired = compile(ServiceMap(services: [Fixtures.echo, Fixtures.dualStack, Fixtures.noEndpoints, Fixtures.localPolicies,
                                                    Fixtures.sharedBalancer]))
        let client = try NftablesClient(networkNamespace: target.name)
        var transaction = Transaction()
        desired.tables.forEach { transaction.replace($0) }
        try client.commit(transaction)

        let reader = KernelReader(socket: client.socket)
        for table in desired.tables {
            let readBack = try XCTUnwrap(try reader.read(table.family, table.name))
            XCTAssertEqual(readBack.untrustedChains, [])
            XCTAssertEqual(readBack.unreadableSets, [])
            XCTAssertEqual(sorted(readBack.table), sorted(table), "\(table.qualifiedName) reads back differently")
        }
        XCTAssertNil(try reader.read(.ip, "no-such-table"))
    }

    func testSecondSyncOfUnchangedObjectsCommitsNothing() throws {
        let desired = compile(services(20))
        let first = try RulesetSync(kernel: NetlinkKernel(networkNamespace: target.name)).sync(to: desired)
        XCTAssertGreaterThan(first.operations, 0)

        // The same engine remembers; a fresh one (a new process) reads back and agrees.
        let engine = RulesetSync(kernel: try NetlinkKernel(networkNamespace: target.name))
        let fresh = try engine.sync(to: desired)
        XCTAssertTrue(fresh.readBack)
        XCTAssertEqual(fresh.operations, 0, "\(fresh.summaries)")
        let again = try engine.sync(to: desired)
        XCTAssertFalse(again.readBack)
        XCTAssertEqual(again.operations, 0)
    }

    func testForeignChangesAreDetectedAndRepaired() throws {
        let desired = compile(services(5))
        let engine = RulesetSync(kernel: try NetlinkKernel(networkNamespace: target.name))
        try engine.sync(to: desired)
        let expected = try target.canonicalRuleset()

        // Someone else edits our table: drops a dispatch element, adds a rule, removes a backend.
        try target.run(["nft", "delete", "element", "ip", "nftproxy", "service-ips", "{ 198.18.0.3 . tcp . 80 }"]).check()
        try target.run(["nft", "insert", "rule", "ip", "nftproxy", "services", "counter", "drop"]).check()
        try target.run(["nft", "delete", "element", "ip", "nftproxy", "nodeport-backends-3",
                        "{ tcp . 30001 . 2 }"]).check()
        XCTAssertNotEqual(try target.canonicalRuleset(), expected)

        // The running engine notices the generation moved, reads back and repairs.
        let repaired = try engine.sync(to: desired)
        XCTAssertTrue(repaired.readBack)
        // The two deleted elements, and the three backends elements of the frontend whose
        // service-ips element went: without it their keys do not follow from the verdict maps,
        // so the read-back does not look them up, and the sync adds them again (the kernel
        // takes an element it holds with the same data as it is).
        XCTAssertEqual(repaired.elementsAdded, 2 + 3, "\(repaired.summaries)")
        XCTAssertTrue(repaired.summaries.contains { $0.hasPrefix("flush chain ip nftproxy services") }, "\(repaired.summaries)")
        XCTAssertEqual(try target.canonicalRuleset(), expected)

        // A fresh process repairs the same way.
        try target.run(["nft", "add", "element", "ip", "nftproxy", "cluster-ips", "{ 198.18.7.7 }"]).check()
        let freshRepair = try RulesetSync(kernel: try NetlinkKernel(networkNamespace: target.name)).sync(to: desired)
        XCTAssertEqual(freshRepair.elementsRemoved, 1, "\(freshRepair.summaries)")
        XCTAssertEqual(try target.canonicalRuleset(), expected)
    }

    func testCommitAgainstAStaleGenerationIsRefusedAndTheEngineRereads() throws {
        let client = try NftablesClient(networkNamespace: target.name)
        let engine = RulesetSync(kernel: try NetlinkKernel(networkNamespace: target.name))
        try engine.sync(to: compile(services(3)))
        let generation = try client.socket.generationID()
        // A commit computed against an old generation is refused as a whole...
        try target.run(["nft", "add", "table", "inet", "someone-else"]).check()
        var transaction = Transaction()
        transaction.append(.addTable(.ip, "nftproxy"))
        XCTAssertThrowsError(try client.commit(transaction, generationID: generation)) { error in
            guard case NetlinkError.generationChanged = error else { return XCTFail("\(error)") }
        }
        // ...and the engine re-reads and succeeds.
        let report = try engine.sync(to: compile(services(4)))
        XCTAssertTrue(report.readBack)
        XCTAssertEqual(try target.tables().sorted(), ["inet someone-else", "ip nftproxy", "ip6 nftproxy"])
    }
}

extension SyncTests {
    /// Lets another writer (`nft`, a process of its own) commit once, between the engine's
    /// planning and its next commit.
    private func interleave(_ command: [String], into kernel: InterleavingKernel) {
        let namespace: TestNamespace = target
        kernel.beforeNextCommit = {
            do { _ = try namespace.run(command).check() } catch { XCTFail("the other writer failed: \(error)") }
        }
    }

    func testACommitOvertakenByAnotherWriterIsReplannedAndRetried() throws {
        let kernel = InterleavingKernel(try NetlinkKernel(networkNamespace: target.name))
        let engine = RulesetSync(kernel: kernel)
        try engine.sync(to: compile(services(3)))
        // The other writer lands after our plan; it also removes one of our elements.
        interleave(["nft", "delete", "element", "ip", "nftproxy", "cluster-ips", "{ 198.18.0.1 }"], into: kernel)

        let report = try engine.sync(to: compile(services(4)))
        XCTAssertEqual(report.retries, 1, "\(report.summaries)")
        XCTAssertTrue(report.readBack)
        // The replanned batch restores what the other writer removed.
        XCTAssertTrue(report.summaries.contains { $0.hasPrefix("add element ip nftproxy cluster-ips") }, "\(report.summaries)")
        let fresh = try RulesetSync(kernel: try NetlinkKernel(networkNamespace: target.name)).sync(to: compile(services(4)))
        XCTAssertEqual(fresh.operations, 0, "\(fresh.summaries)")
    }

    func testAnIncrementalCommitOvertakenByAnotherWriterCommitsNothing() throws {
        let kernel = InterleavingKernel(try NetlinkKernel(networkNamespace: target.name))
        let engine = RulesetSync(kernel: kernel)
        try engine.sync(to: compile(services(3)))
        let ourTable = ["nft", "list", "table", "ip", "nftproxy"]
        let before = try target.run(ourTable).check().stdout
        interleave(["nft", "add", "table", "inet", "someone-else"], into: kernel)

        var transaction = Transaction()
        transaction.append(.flushChain(.ip, table: "nftproxy", chain: "services"))
        guard case .overtaken = try engine.commitChange(transaction) else {
            return XCTFail("a change planned against an old generation must not land")
        }
        XCTAssertEqual(try target.run(ourTable).check().stdout, before)
        // The caller then syncs in full, which reads back.
        XCTAssertTrue(try engine.sync(to: compile(services(3))).readBack)
    }
}

/// Services for sync tests.
private enum Fixtures {
    static let echo = Service(
        name: ServiceName(namespace: "default", name: "echo-server"), clusterIPs: [IPAddress("198.18.0.10")!],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 32000,
                            endpoints: ["198.19.1.11", "198.19.1.12", "198.19.1.13"].map { Endpoint(address: IPAddress($0)!, port: 8080) })])
    static let dualStack = Service(
        name: ServiceName(namespace: "shop", name: "web"),
        clusterIPs: [IPAddress("198.18.0.20")!, IPAddress("2001:db8:5::20")!],
        externalIPs: [IPAddress("203.0.113.7")!], loadBalancerIPs: [IPAddress("2001:db8:203::8")!],
        ports: [ServicePort(name: "dns", transport: .udp, port: 53, nodePort: 30053,
                            endpoints: ["198.19.1.31", "2001:db8:1:1::31"].map { Endpoint(address: IPAddress($0)!, port: 5353) })])
    /// externalTrafficPolicy Local (one endpoint here, one elsewhere) and internalTrafficPolicy
    /// Local with no endpoint here: the Local-policy chains, maps and `drop` elements.
    static let localPolicies = Service(
        name: ServiceName(namespace: "shop", name: "local"),
        clusterIPs: [IPAddress("198.18.0.40")!, IPAddress("2001:db8:5::40")!],
        externalIPs: [IPAddress("203.0.113.40")!], loadBalancerIPs: [IPAddress("2001:db8:203::40")!],
        ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 30040, endpoints: [
            Endpoint(address: IPAddress("198.19.1.41")!, port: 8080, nodeName: "node-1"),
            Endpoint(address: IPAddress("198.19.2.41")!, port: 8080, nodeName: "node-2"),
            Endpoint(address: IPAddress("2001:db8:1:2::41")!, port: 8080, nodeName: "node-2"),
        ])],
        externalTrafficPolicy: .local, internalTrafficPolicy: .local,
        loadBalancerSourceRanges: [CIDR("2001:db8:9::/48")!, CIDR("2001:db8:a::5/128")!])
    /// Shares the LB IP and port of `localPolicies` over UDP, with a range inside one of its own.
    static let sharedBalancer = Service(
        name: ServiceName(namespace: "shop", name: "local-udp"),
        clusterIPs: [IPAddress("2001:db8:5::41")!], loadBalancerIPs: [IPAddress("2001:db8:203::40")!],
        ports: [ServicePort(name: "dns", transport: .udp, port: 80,
                            endpoints: [Endpoint(address: IPAddress("2001:db8:1:2::41")!, port: 5353)])],
        loadBalancerSourceRanges: [CIDR("2001:db8:9:1::/64")!, CIDR("2001:db8:b::/64")!])
    static let noEndpoints = Service(
        name: ServiceName(namespace: "default", name: "empty"), clusterIPs: [IPAddress("198.18.0.99")!],
        ports: [ServicePort(name: "", transport: .sctp, port: 9999, nodePort: 30999)])
}
