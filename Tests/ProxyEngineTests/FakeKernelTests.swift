import Conntrack
import Glibc
import Netlink
import Nftables
import ProxyEngineTesting
import ServiceModel
import XCTest

/// The in-memory kernel refuses what nf_tables refuses, applies all or nothing and moves
/// its generation on every commit (the kernel tests check the same against the kernel).
final class FakeKernelTests: XCTestCase {
    private let family = TableFamily.ip
    private let table = "t"
    private let ports = NamedSet(name: "ports", key: .types([.inetService]), size: 2)
    private let targets = NamedSet(name: "targets", key: .types([.inetService]), data: .verdict)

    private func element(_ port: UInt16, jump chain: String? = nil) -> SetElement {
        SetElement(key: [.port(port)], data: chain.map { .verdict(.jump($0)) })
    }

    /// A table with a set of size 2, a verdict map, chain `a` using both and chain `b`.
    private func kernel() throws -> FakeKernel {
        let kernel = FakeKernel()
        var setup = Transaction()
        setup.append(.addTable(family, table))
        setup.append(.addChain(family, table: table, Chain(name: "a")))
        setup.append(.addChain(family, table: table, Chain(name: "b")))
        setup.append(.addSet(family, table: table, ports))
        setup.append(.addSet(family, table: table, targets))
        setup.append(.addElements(family, table: table, set: ports, [element(80)]))
        setup.append(.addRule(family, table: table, chain: "a",
                              Rule([.lookup([.transportDestinationPort], set: "ports"), .verdict(.jump("b"))])))
        try kernel.commit(setup, expectedGeneration: nil)
        return kernel
    }

    private func assertRefused(_ operation: Nftables.Operation, errno expected: Int32, in kernel: FakeKernel,
                               file: StaticString = #filePath, line: UInt = #line) {
        let before = kernel.tables
        let generation = kernel.currentGeneration
        var transaction = Transaction()
        transaction.append(.addElements(family, table: table, set: ports, [element(443)]))  // valid, and undone
        transaction.append(operation)
        XCTAssertThrowsError(try kernel.commit(transaction, expectedGeneration: nil), file: file, line: line) { error in
            guard case NetlinkError.rejected(let name, let errno, _) = error else {
                return XCTFail("expected a refusal, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(name, operation.summary, file: file, line: line)
            XCTAssertEqual(errno, expected, "\(operation.summary)", file: file, line: line)
        }
        XCTAssertEqual(kernel.tables, before, "a refused transaction must change nothing", file: file, line: line)
        XCTAssertEqual(kernel.currentGeneration, generation, file: file, line: line)
    }

    func testRefusesWhatTheKernelRefusesAndAppliesNothingThen() throws {
        let kernel = try kernel()
        assertRefused(.addElements(family, table: table, set: NamedSet(name: "nope", key: .types([.inetService])),
                                   [element(1)]), errno: ENOENT, in: kernel)
        assertRefused(.addChain(family, table: "nope", Chain(name: "c")), errno: ENOENT, in: kernel)
        assertRefused(.flushChain(family, table: table, chain: "nope"), errno: ENOENT, in: kernel)
        assertRefused(.deleteTable(.ip6, table), errno: ENOENT, in: kernel)
        assertRefused(.deleteElements(family, table: table, set: ports, [element(22)]), errno: ENOENT, in: kernel)
        // 80 and 443 fill the set of size 2.
        assertRefused(.addElements(family, table: table, set: ports, [element(8080)]), errno: ENFILE, in: kernel)
        assertRefused(.addElements(family, table: table, set: targets, [element(1, jump: "nope")]), errno: ENOENT, in: kernel)
        assertRefused(.addRule(family, table: table, chain: "b", Rule([.lookup([.l4proto], set: "nope")])),
                      errno: ENOENT, in: kernel)
        assertRefused(.deleteChain(family, table: table, chain: "b"), errno: EBUSY, in: kernel)
        assertRefused(.deleteSet(family, table: table, set: "ports"), errno: EBUSY, in: kernel)
    }

    func testAnElementAgainIsAcceptedButNotWithOtherData() throws {
        let kernel = try kernel()
        var again = Transaction()
        again.append(.addElements(family, table: table, set: ports, [element(80)]))
        again.append(.addElements(family, table: table, set: targets, [element(1, jump: "b")]))
        try kernel.commit(again, expectedGeneration: nil)
        XCTAssertEqual(kernel.tables.table(family, table)?.sets.first { $0.name == "ports" }?.elements, [element(80)])
        assertRefused(.addElements(family, table: table, set: targets, [element(1, jump: "a")]), errno: EEXIST, in: kernel)
        // A verdict element that jumps to `b` keeps it in use even without the rule.
        var flushed = Transaction()
        flushed.append(.flushChain(family, table: table, chain: "a"))
        try kernel.commit(flushed, expectedGeneration: nil)
        assertRefused(.deleteChain(family, table: table, chain: "b"), errno: EBUSY, in: kernel)
    }

    func testAFullSetTakesAnElementForOneDeletedInTheSameTransaction() throws {
        let kernel = try kernel()
        var swap = Transaction()
        swap.append(.addElements(family, table: table, set: ports, [element(443)]))
        swap.append(.deleteElements(family, table: table, set: ports, [element(80)]))
        swap.append(.addElements(family, table: table, set: ports, [element(8080)]))
        try kernel.commit(swap, expectedGeneration: nil)
        let elements = kernel.tables.table(family, table)?.sets.first { $0.name == "ports" }?.elements ?? []
        XCTAssertEqual(Set(elements), [element(443), element(8080)])
    }

    func testDeletingAChainDeletesItsRulesAndATableEverything() throws {
        let kernel = try kernel()
        var transaction = Transaction()
        transaction.append(.deleteChain(family, table: table, chain: "a"))  // its rule used `ports` and jumped to `b`
        transaction.append(.deleteSet(family, table: table, set: "ports"))
        transaction.append(.deleteChain(family, table: table, chain: "b"))
        try kernel.commit(transaction, expectedGeneration: nil)
        XCTAssertEqual(kernel.tables.table(family, table)?.chains, [])
        var remove = Transaction()
        remove.remove(family: family, table: table)
        remove.remove(family: .ip6, table: table)
        try kernel.commit(remove, expectedGeneration: nil)
        XCTAssertEqual(kernel.tables.ruleset.tables, [])
    }

    func testTheGenerationMovesOnEveryCommitAndGuardsCommits() throws {
        let kernel = try kernel()
        let generation = try kernel.generation()
        var flush = Transaction()
        flush.append(.flushChain(family, table: table, chain: "b"))
        try kernel.commit(flush, expectedGeneration: generation)
        XCTAssertEqual(try kernel.generation(), generation + 1)
        try kernel.commit(Transaction(), expectedGeneration: generation)  // nothing to send: nothing checked
        XCTAssertThrowsError(try kernel.commit(flush, expectedGeneration: generation)) { error in
            guard case NetlinkError.generationChanged = error else { return XCTFail("\(error)") }
        }
        kernel.foreignCommitElsewhere()
        XCTAssertEqual(try kernel.generation(), generation + 2)
        XCTAssertEqual(kernel.commits.count, 2, "the setup and one flush; not the refused one")
        XCTAssertEqual(kernel.commits.last, flush)
    }

    func testInjectedWritersAndFailuresLandOnTheNextCommit() throws {
        let kernel = try kernel()
        var flush = Transaction()
        flush.append(.flushChain(family, table: table, chain: "b"))
        kernel.failNextCommit(with: .bufferOverrun)
        XCTAssertThrowsError(try kernel.commit(flush, expectedGeneration: nil)) { error in
            guard case NetlinkError.bufferOverrun = error else { return XCTFail("\(error)") }
        }
        let generation = try kernel.generation()
        kernel.beforeNextCommit { kernel in
            var other = Transaction()
            other.append(.deleteElements(.ip, table: "t", set: self.ports, [self.element(80)]))
            try kernel.foreignCommit(other)
        }
        XCTAssertThrowsError(try kernel.commit(flush, expectedGeneration: generation))
        XCTAssertEqual(kernel.tables.table(family, table)?.sets.first { $0.name == "ports" }?.elements, [])
        try kernel.commit(flush, expectedGeneration: try kernel.generation())
    }

    func testConntrackDeletesRemoveWhatMatches() throws {
        let kernel = FakeKernel()
        let client = IPAddress("198.51.100.7")!, clusterIP = IPAddress("198.18.0.53")!
        func flow(_ transport: TransportProtocol, endpoint: String) -> ConntrackFlow {
            ConntrackFlow(transport: transport,
                          original: FlowTuple(source: client, destination: clusterIP, sourcePort: 40000, destinationPort: 53),
                          reply: FlowTuple(source: IPAddress(endpoint)!, destination: client, sourcePort: 5353, destinationPort: 40000),
                          status: [.destinationNAT])
        }
        kernel.flows = [flow(.udp, endpoint: "198.19.1.11"), flow(.udp, endpoint: "198.19.1.12"), flow(.tcp, endpoint: "198.19.1.11")]
        let deleted = try kernel.deleteConntrackFlows(matching: [
            ConntrackFilter(family: .v4, transport: .udp, originalDestination: clusterIP, originalDestinationPort: 53,
                            replySource: IPAddress("198.19.1.11")!, replySourcePort: 5353),
        ])
        XCTAssertEqual(deleted, 1)
        XCTAssertEqual(try kernel.conntrackFlows(family: .v4), [flow(.udp, endpoint: "198.19.1.12"), flow(.tcp, endpoint: "198.19.1.11")])
        XCTAssertEqual(try kernel.conntrackFlows(family: .v6), [])
    }
}
