import Foundation
import Netlink
import Nftables
import ProxyCompiler
import ProxyEngine
import ProxyEngineTesting
import ServiceModel
import ServiceTestSupport
import XCTest

/// The in-memory kernel the engine tests rely on ends in the kernel's state: the same random
/// sequence of transactions goes into `FakeKernel` and into a private network namespace,
/// and after each the tables read back from the kernel equal the fake's, the generation moved
/// alike, and a transaction one kernel refuses the other refuses too, with the same errno for
/// the same operation, keeping its previous state.
final class FakeKernelConformanceTests: XCTestCase {
    private var target: TestNamespace!

    override func setUpWithError() throws {
        guard geteuid() == 0 else { throw XCTSkip("requires root: kernel tests program private network namespaces") }
        target = try TestNamespace("conformance")
    }

    override func tearDown() { target?.remove() }

    private let node = NodeConfig(nodeName: "node-1", nodeIPs: [IPAddress("192.0.2.10")!],
                                  clusterCIDRs: [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])
    private let table = RulesetLayout.tableName

    func testTheSameTransactionsLeaveTheSameState() throws {
        let kernel = try NetlinkKernel(networkNamespace: target.name)
        let fake = FakeKernel()
        var random = RandomServices(seed: 5)
        var map = random.map(size: 16)
        var compiled = CompiledServices(node: node, map: map)
        try commitToBoth(TableDiff.transaction(from: Ruleset(tables: []), to: compile(map)), kernel, fake, "first")

        for step in 1...40 {
            map = random.mutate(map, size: 16)
            let transaction: Transaction
            if step % 3 == 0 {
                // A full diff against what the kernel reads back.
                transaction = TableDiff.transaction(from: try readBack(kernel), to: compile(map))
                compiled = CompiledServices(node: node, map: map)
            } else {
                let change = compiled.apply(map)
                transaction = TableDiff.transaction(from: change.before, to: change.after)
            }
            if step % 4 == 0 {
                // The change, then an operation both must refuse: neither may keep any of it.
                for (index, doomed) in try doomedOperations(fake, after: transaction).enumerated() {
                    var refused = transaction
                    doomed.operations.forEach { refused.append($0) }
                    try refuseInBoth(refused, errno: doomed.errno, kernel, fake, "step \(step), refusal \(index)")
                }
            }
            try commitToBoth(transaction, kernel, fake, "step \(step)")
            if step % 5 == 0 { try commitToBoth(try edgeCases(fake, step: step), kernel, fake, "step \(step), edge cases") }
        }
    }

    // MARK: Transactions

    private func compile(_ map: ServiceMap) -> Ruleset { Compiler(node: node).compile(map).ruleset }

    /// Operations the kernel refuses after `transaction` in the state `fake` holds: a few
    /// operations, the last of which is refused with the errno given.
    private func doomedOperations(_ fake: FakeKernel, after transaction: Transaction) throws
        -> [(operations: [Nftables.Operation], errno: Int32)] {
        let current = try XCTUnwrap(fake.tables.table(.ip, table))
        let clusterIPs = try XCTUnwrap(current.sets.first { $0.name == RulesetLayout.SetName.clusterIPs })
        let serviceIPs = try XCTUnwrap(current.sets.first { $0.name == RulesetLayout.SetName.serviceIPs })
        let missingSet = NamedSet(name: "no-such-set", key: .types([.ipv4Address]))
        let tiny = NamedSet(name: "tiny-doomed", key: .types([.ipv4Address]), size: 2)
        let addresses = (1...3).map { SetElement(key: [.address(IPAddress("198.18.99.\($0)")!)]) }
        let services = RulesetLayout.ChainName.services
        var doomed: [([Nftables.Operation], Int32)] = [
            ([.addElements(.ip, table: table, set: missingSet, addresses[...])], ENOENT),
            ([.deleteElements(.ip, table: table, set: clusterIPs, addresses[..<1])], ENOENT),
            ([.deleteChain(.ip, table: table, chain: services)], EBUSY),
            ([.deleteSet(.ip, table: table, set: clusterIPs.name)], EBUSY),
            ([.addRule(.ip, table: table, chain: "no-such-chain", Rule([.verdict(.accept)]))], ENOENT),
            ([.addRule(.ip, table: table, chain: services,
                       Rule([.lookup([.address(.destination, .ip)], set: missingSet.name), .verdict(.accept)]))], ENOENT),
            ([.addRule(.ip, table: table, chain: services, Rule([.verdict(.jump("nat-output"))]))], EOPNOTSUPP),
            ([.addElements(.ip, table: table, set: serviceIPs,
                           [SetElement(key: [.address(IPAddress("198.18.99.1")!), .proto(6), .port(80)],
                                       data: .verdict(.goto("no-such-chain")))])], ENOENT),
            ([.deleteTable(.ip6, "no-such-table")], ENOENT),
            // A set of size 2 takes no third element.
            ([.addSet(.ip, table: table, tiny), .addElements(.ip, table: table, set: tiny, addresses[...])], ENFILE),
        ]
        let touched = Set(transaction.operations.flatMap { operation -> [[Value]] in
            guard case .deleteElements(_, _, let set, let elements) = operation, set.name == serviceIPs.name else { return [] }
            return elements.map(\.key)
        })
        if let element = serviceIPs.elements.first(where: { !touched.contains($0.key) }) {
            var other = element
            other.data = .verdict(.goto("reject-packet"))
            if other.data == element.data { other.data = .verdict(.goto("reject-unserved")) }
            doomed.append(([.addElements(.ip, table: table, set: serviceIPs, [other])], EEXIST))
        }
        return doomed.map { (operations: $0.0, errno: $0.1) }
    }

    /// A transaction both kernels accept although it looks odd: an element added again, and
    /// a full set of size 2 that takes an element for one deleted in the same batch.
    private func edgeCases(_ fake: FakeKernel, step: Int) throws -> Transaction {
        let current = try XCTUnwrap(fake.tables.table(.ip, table))
        let clusterIPs = try XCTUnwrap(current.sets.first { $0.name == RulesetLayout.SetName.clusterIPs })
        let tiny = NamedSet(name: "tiny-\(step)", key: .types([.ipv4Address]), size: 2)
        let addresses = (1...3).map { SetElement(key: [.address(IPAddress("198.18.98.\($0)")!)]) }
        var transaction = Transaction()
        transaction.append(.addElements(.ip, table: table, set: clusterIPs, clusterIPs.elements.prefix(2)))
        transaction.append(.addSet(.ip, table: table, tiny))
        transaction.append(.addElements(.ip, table: table, set: tiny, addresses[..<2]))
        transaction.append(.deleteElements(.ip, table: table, set: tiny, addresses[..<1]))
        transaction.append(.addElements(.ip, table: table, set: tiny, addresses[2...]))
        return transaction
    }

    // MARK: Both kernels

    /// Our tables as the kernel holds them, every set and rule understood.
    private func readBack(_ kernel: NetlinkKernel) throws -> Ruleset {
        var tables: [Table] = []
        for family in TableFamily.allCases {
            guard let readBack = try kernel.readTable(family, table) else { continue }
            XCTAssertEqual(readBack.untrustedChains, [], "\(family) rules the reader does not understand")
            XCTAssertEqual(readBack.unreadableSets, [], "\(family) sets the reader does not understand")
            tables.append(readBack.table)
        }
        return Ruleset(tables: tables)
    }

    private func assertSameState(_ kernel: NetlinkKernel, _ fake: FakeKernel, _ message: String,
                                 file: StaticString = #filePath, line: UInt = #line) throws {
        let inFake = Ruleset(tables: TableFamily.allCases.compactMap { fake.tables.table($0, table) })
        XCTAssertEqual(try readBack(kernel).canonical(), inFake.canonical(),
                       "\(message): the kernel and the fake differ", file: file, line: line)
    }

    private func commitToBoth(_ transaction: Transaction, _ kernel: NetlinkKernel, _ fake: FakeKernel, _ message: String,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        let (kernelBefore, fakeBefore) = (try kernel.generation(), try fake.generation())
        try kernel.commit(transaction, expectedGeneration: kernelBefore)
        try fake.commit(transaction, expectedGeneration: fakeBefore)
        let moved = transaction.isEmpty ? 0 : 1
        XCTAssertEqual(try kernel.generation() &- kernelBefore, UInt32(moved), "\(message): kernel generation", file: file, line: line)
        XCTAssertEqual(try fake.generation() &- fakeBefore, UInt32(moved), "\(message): fake generation", file: file, line: line)
        try assertSameState(kernel, fake, message, file: file, line: line)
    }

    private func refuseInBoth(_ transaction: Transaction, errno: Int32, _ kernel: NetlinkKernel, _ fake: FakeKernel,
                              _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (kernelBefore, fakeBefore) = (try kernel.generation(), try fake.generation())
        let expected = transaction.operations.last?.summary ?? ""
        for (name, commit) in [("kernel", { () throws -> Void in try kernel.commit(transaction, expectedGeneration: nil) }),
                               ("fake", { () throws -> Void in try fake.commit(transaction, expectedGeneration: nil) })] {
            XCTAssertThrowsError(try commit(), "\(message): the \(name) accepted \(expected)", file: file, line: line) { error in
                guard case NetlinkError.rejected(let operation, let refusal, _) = error else {
                    return XCTFail("\(message): the \(name) threw \(error)", file: file, line: line)
                }
                XCTAssertEqual(operation, expected, "\(message): the \(name)", file: file, line: line)
                XCTAssertEqual(refusal, errno, "\(message): the \(name) refused \(operation)", file: file, line: line)
            }
        }
        XCTAssertEqual(try kernel.generation(), kernelBefore, "\(message): kernel generation", file: file, line: line)
        XCTAssertEqual(try fake.generation(), fakeBefore, "\(message): fake generation", file: file, line: line)
        try assertSameState(kernel, fake, message, file: file, line: line)
    }
}
