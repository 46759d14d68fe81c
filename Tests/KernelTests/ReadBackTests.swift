import Foundation
import Netlink
@testable import Nftables
import ProxyEngine
import ServiceModel
import ServiceTestSupport
import XCTest

/// Sets with timeouts, dynamic sets updated from rules and per-element counters: what our
/// encoder commits equals what `nft -f` of our rendering loads, and the read-back turns
/// either kernel state into the same IR.
final class ReadBackTests: XCTestCase {
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

    private let address = { (text: String) in Value.address(IPAddress(text)!) }

    /// A table using every set option and the update statement.
    private var table: Table {
        let affinity = NamedSet(name: "affinity", key: .types([.ipv4Address, .inetService]), size: 1024,
                                flags: [.dynamic], timeout: 10_800_000)
        let counters = NamedSet(
            name: "endpoint-counters", key: .types([.ipv4Address, .inetService]), flags: [.timeout], counter: true,
            elements: [SetElement(key: [address("198.19.1.11"), .port(8080)]),
                       SetElement(key: [address("198.19.1.12"), .port(8080)], timeout: 30_000)])
        let timed = NamedSet(name: "timed-dispatch", key: .types([.ipv4Address]), data: .verdict, timeout: 60_000,
                             elements: [SetElement(key: [address("198.18.0.1")], data: .verdict(.jump("affine"))),
                                        SetElement(key: [address("198.18.0.2")], data: .verdict(.accept), timeout: 5_000)])
        let saddr = Selector.address(.source, .ip)
        let chains = [
            Chain(name: "affine", rules: [
                Rule([.updateSet([saddr, .transportDestinationPort], set: "affinity", timeout: nil)]),
                Rule([.updateSet([saddr, .transportDestinationPort], set: "affinity", timeout: 600_000), .counter]),
                Rule([.lookup([.address(.destination, .ip), .transportDestinationPort], set: "endpoint-counters"),
                      .verdict(.accept)]),
            ]),
            Chain(name: "dispatch", base: BaseChain(type: .filter, hook: .input, priority: 0), rules: [
                Rule([.verdictMap([.address(.destination, .ip)], map: "timed-dispatch")]),
            ]),
        ]
        return Table(family: .ip, name: "nftproxy", sets: [affinity, counters, timed], chains: chains)
    }

    private func sorted(_ table: Table) -> Table {
        var copy = table
        copy.sets = copy.sets.map { var set = $0; set.elements.sort { "\($0.key)" < "\($1.key)" }; return set }
            .sorted { $0.name < $1.name }
        copy.chains.sort { $0.name < $1.name }
        return copy
    }

    func testTimeoutsDynamicSetsAndCountersAgreeWithNftAndReadBack() throws {
        for (label, readBack) in try checkAgreementAndReadBack(table, label: "set-options") {
            let counters = try XCTUnwrap(readBack.table.sets.first { $0.name == "endpoint-counters" })
            for element in counters.elements {
                XCTAssertEqual(element.observed?.packets, 0, "\(label) \(element.key)")
                XCTAssertEqual(element.observed?.bytes, 0, "\(label) \(element.key)")
            }
            let timed = try XCTUnwrap(counters.elements.first { $0.timeout == 30_000 })
            XCTAssertLessThanOrEqual(try XCTUnwrap(timed.observed?.expiresIn), 30_000, label)
        }
    }

    /// The table whose encoded bytes `EncodedBytesTests` pins.
    func testTheTableWithEveryStatementAgreesWithNftAndReadsBack() throws {
        try checkAgreementAndReadBack(SampleTables.everyStatementAndSetOption, label: "every-statement")
    }

    /// Commits `desired` into one namespace and loads its rendering with `nft -f` into
    /// another; checks both agree and read back to `desired`, and returns the read-backs.
    @discardableResult
    private func checkAgreementAndReadBack(_ desired: Table, label: String) throws -> [(String, TableReadBack)] {
        let ours = try namespace("rb-ours-\(label)")
        let client = try NftablesClient(networkNamespace: ours.name)
        var transaction = Transaction()
        transaction.create(desired)
        try client.commit(transaction)

        let reference = try namespace("rb-nft-\(label)")
        let script = ScriptRenderer().render(Ruleset(tables: [desired]))
        let loaded = try reference.run(["nft", "-f", "-"], input: script)
        XCTAssertTrue(loaded.succeeded, "nft -f of our rendering failed: \(loaded)\n\(script)")

        XCTAssertEqual(try ours.canonicalRuleset(), try reference.canonicalRuleset(),
                       "kernel state after our commit differs from nft -f of the rendering")
        XCTAssertEqual(try ours.canonicalBytecode(), try reference.canonicalBytecode(),
                       "bytecode after our commit differs from nft -f of the rendering")

        var readBacks: [(String, TableReadBack)] = []
        for (label, namespace) in [("\(label) ours", ours), ("\(label) nft", reference)] {
            let reader = KernelReader(socket: try NetlinkSocket(namespace: try NetworkNamespace(named: namespace.name)))
            let readBack = try XCTUnwrap(try reader.read(.ip, "nftproxy"), label)
            XCTAssertEqual(readBack.problems, [], label)
            XCTAssertEqual(readBack.unreadableSets, [], label)
            XCTAssertEqual(readBack.untrustedChains, [], label)
            XCTAssertEqual(sorted(readBack.table), sorted(desired), "\(label): reads back differently")
            readBacks.append((label, readBack))
        }
        return readBacks
    }

    func testAForeignRuleAndSetAreReportedWithTheirReason() throws {
        let target = try namespace("rb-foreign")
        try target.run(["nft", "-f", "-"], input: """
            table ip nftproxy {
              set intervals {
                type ipv4_addr
                flags interval
                elements = { 10.0.0.0/8 }
              }
              chain services {
                ip saddr 10.0.0.1 limit rate 10/second accept
              }
            }
            """).check()
        let reader = KernelReader(socket: try NetlinkSocket(namespace: try NetworkNamespace(named: target.name)))
        let readBack = try XCTUnwrap(try reader.read(.ip, "nftproxy"))
        XCTAssertEqual(readBack.unreadableSets, ["intervals"])
        XCTAssertEqual(readBack.untrustedChains, ["services"])
        XCTAssertEqual(readBack.problems.count, 2, "\(readBack.problems)")
        for problem in readBack.problems {
            switch problem {
            case let .unreadableSet(set, reason):
                XCTAssertEqual(set, "intervals")
                XCTAssertTrue(reason.contains("flags"), reason)
            case let .unrecognizedRule(chain, index, reason):
                XCTAssertEqual(chain, "services")
                XCTAssertEqual(index, 0)
                XCTAssertTrue(reason.contains("limit"), reason)
            }
        }

        // A sync reports the same problems, and replaces the table it cannot read.
        let report = try RulesetSync(kernel: try NetlinkKernel(networkNamespace: target.name))
            .sync(to: Ruleset(tables: [Table(family: .ip, name: "nftproxy")]))
        XCTAssertEqual(report.readBackProblems, readBack.problems.sorted { $0.description < $1.description })
        XCTAssertEqual(try target.tables(), ["ip nftproxy"])
        XCTAssertEqual(try reader.read(.ip, "nftproxy")?.table.sets.map(\.name), [GenerationStamp.setName])
        XCTAssertEqual((try reader.read(.ip, "nftproxy")?.table).map(GenerationStamp.unstamped), Table(family: .ip, name: "nftproxy"))
    }
}
