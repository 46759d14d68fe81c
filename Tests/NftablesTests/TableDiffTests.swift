import XCTest
import ServiceModel
@testable import Nftables

final class TableDiffTests: XCTestCase {
    private let ip = { (text: String) in Value.address(IPAddress(text)!) }

    private func table(backends: [String: [SetElement]], lbChains: [String], extraRule: Rule? = nil) -> Table {
        var sets = [NamedSet(name: "service-ips", key: .types([.ipv4Address, .inetProto, .inetService]), data: .verdict,
                             elements: [SetElement(key: [ip("198.18.0.10"), .proto(6), .port(80)],
                                                   data: .verdict(.goto(lbChains.first ?? "none")))])]
        for (name, elements) in backends.sorted(by: { $0.key < $1.key }) {
            sets.append(NamedSet(name: name, key: .types([.ipv4Address, .inetProto, .inetService, .integer32]),
                                 data: .fields(.types([.ipv4Address, .inetService])), elements: elements))
        }
        var services = Chain(name: "services", rules: [Rule([.verdictMap([.address(.destination, .ip), .l4proto, .transportDestinationPort],
                                                                         map: "service-ips")])])
        if let extraRule { services.rules.append(extraRule) }
        return Table(family: .ip, name: "nftproxy", sets: sets,
                     chains: [services] + lbChains.map { Chain(name: $0, rules: [Rule([.counter])]) })
    }

    private func backend(_ index: UInt32, _ endpoint: String) -> SetElement {
        SetElement(key: [ip("198.18.0.10"), .proto(6), .port(80), .integer(index)], data: .values([ip(endpoint), .port(8080)]))
    }

    private func summaries(_ transaction: Transaction) -> [String] { transaction.operations.map(\.summary) }

    func testNoTableMeansCreateEverything() {
        let desired = table(backends: ["b-1": [backend(0, "198.19.1.11")]], lbChains: ["lb-1"])
        let operations = TableDiff.transaction(from: nil, to: desired).operations
        XCTAssertEqual(operations.first, .addTable(.ip, "nftproxy"))
        XCTAssertFalse(operations.contains { if case .deleteTable = $0 { return true }; return false })
    }

    func testIdenticalTablesNeedNothing() {
        let desired = table(backends: ["b-1": [backend(0, "198.19.1.11")]], lbChains: ["lb-1"])
        var shuffled = desired
        shuffled.sets.reverse()
        shuffled.chains.reverse()
        XCTAssertTrue(TableDiff.transaction(from: shuffled, to: desired).isEmpty)
    }

    func testChangedElementDataIsDeletedAndAddedAgain() {
        let current = table(backends: ["b-2": [backend(0, "198.19.1.11"), backend(1, "198.19.1.12")]], lbChains: ["lb-2"])
        let desired = table(backends: ["b-2": [backend(0, "198.19.1.11"), backend(1, "198.19.1.13")]], lbChains: ["lb-2"])
        XCTAssertEqual(summaries(TableDiff.transaction(from: current, to: desired)), [
            "delete element ip nftproxy b-2 (1 elements, first { 198.18.0.10 . tcp . 80 . 1 : 198.19.1.12 . 8080 })",
            "add element ip nftproxy b-2 (1 elements, first { 198.18.0.10 . tcp . 80 . 1 : 198.19.1.13 . 8080 })",
        ])
    }

    func testMovingBucketsCreatesNewObjectsFirstAndRemovesOldOnesLast() {
        let current = table(backends: ["b-1": [backend(0, "198.19.1.11")]], lbChains: ["lb-1"])
        let desired = table(backends: ["b-2": [backend(0, "198.19.1.11"), backend(1, "198.19.1.12")]], lbChains: ["lb-2"])
        XCTAssertEqual(summaries(TableDiff.transaction(from: current, to: desired)), [
            "add chain ip nftproxy lb-2",
            "delete element ip nftproxy service-ips (1 elements, first { 198.18.0.10 . tcp . 80 : goto lb-1 })",
            "add element ip nftproxy service-ips (1 elements, first { 198.18.0.10 . tcp . 80 : goto lb-2 })",
            "add map ip nftproxy b-2",
            "add element ip nftproxy b-2 (2 elements, first { 198.18.0.10 . tcp . 80 . 0 : 198.19.1.11 . 8080 })",
            "add rule ip nftproxy lb-2 counter",
            "flush chain ip nftproxy lb-1",
            "delete set ip nftproxy b-1",
            "delete chain ip nftproxy lb-1",
        ])
    }

    func testChangedOrUntrustedRulesRewriteOnlyThatChain() {
        let desired = table(backends: [:], lbChains: ["lb-1"])
        let current = table(backends: [:], lbChains: ["lb-1"], extraRule: Rule([.verdict(.drop)]))
        XCTAssertEqual(summaries(TableDiff.transaction(from: current, to: desired)), [
            "flush chain ip nftproxy services",
            "add rule ip nftproxy services ip daddr . meta l4proto . th dport vmap @service-ips",
        ])
        XCTAssertEqual(summaries(TableDiff.transaction(from: desired, to: desired, untrusted: ["lb-1"])), [
            "flush chain ip nftproxy lb-1",
            "add rule ip nftproxy lb-1 counter",
        ])
    }

    func testRedeclaredSetReplacesTheTable() {
        let desired = table(backends: ["b-1": [backend(0, "198.19.1.11")]], lbChains: ["lb-1"])
        var current = desired
        current.sets[1].data = .fields(.types([.ipv4Address]))
        let operations = TableDiff.transaction(from: current, to: desired).operations
        XCTAssertEqual(Array(operations.prefix(2)), [.addTable(.ip, "nftproxy"), .deleteTable(.ip, "nftproxy")])
    }
}

extension TableDiffTests {
    func testASetKeepsItsSizeWhileItsElementsFitAndIsRecreatedWhenTheyDoNot() {
        var current = table(backends: ["b-2": [backend(0, "198.19.1.11"), backend(1, "198.19.1.12")]], lbChains: ["lb-2"])
        current.sets[1].size = 2
        var desired = current
        desired.sets[1].size = 4   // what a fresh compile would ask for: not a reason to re-create
        desired.sets[1].elements[1] = backend(1, "198.19.1.13")
        XCTAssertFalse(summaries(TableDiff.transaction(from: current, to: desired)).contains { $0.hasPrefix("delete table") })
        XCTAssertEqual(TableDiff.result(from: current, to: desired).sets[1].size, 2, "the kernel keeps the size")

        desired.sets[1].elements.append(backend(2, "198.19.1.14"))  // 3 elements in a set of size 2
        XCTAssertEqual(summaries(TableDiff.transaction(from: current, to: desired)).prefix(2),
                       ["add table ip nftproxy", "delete table ip nftproxy"])
        XCTAssertEqual(TableDiff.result(from: current, to: desired).sets[1].size, 4)

        current.sets[1].size = nil   // no size: no limit
        XCTAssertFalse(summaries(TableDiff.transaction(from: current, to: desired)).contains { $0.hasPrefix("delete table") })
        XCTAssertNil(TableDiff.result(from: current, to: desired).sets[1].size)
    }
}
