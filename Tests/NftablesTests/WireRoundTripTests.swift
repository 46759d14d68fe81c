import XCTest
import Netlink
import ServiceModel
@testable import Nftables

/// Every statement and selector the encoder writes is read back by the decoder, through
/// the real wire form (libnftnl writes the message, libnftnl parses it), without a kernel.
///
/// `StatementKind` and `SelectorKind` are exhaustive switches: a new `Statement` or
/// `Selector` case does not compile until it has a kind here, and the test then fails
/// until its samples round-trip.
final class WireRoundTripTests: XCTestCase {
    enum StatementKind: CaseIterable {
        case compare, prefix, bitTest, lookup, verdictMap, setMarkBits, toggleMarkBits, verdict, dnatMap, masquerade
        case reject, counter, updateSet, updateMap, deleteFromMap

        init(_ statement: Statement) {
            switch statement {
            case .compare: self = .compare
            case .prefix: self = .prefix
            case .bitTest: self = .bitTest
            case .lookup: self = .lookup
            case .verdictMap: self = .verdictMap
            case .setMarkBits: self = .setMarkBits
            case .toggleMarkBits: self = .toggleMarkBits
            case .verdict: self = .verdict
            case .dnatMap: self = .dnatMap
            case .masquerade: self = .masquerade
            case .reject: self = .reject
            case .counter: self = .counter
            case .updateSet: self = .updateSet
            case .updateMap: self = .updateMap
            case .deleteFromMap: self = .deleteFromMap
            }
        }
    }

    enum SelectorKind: CaseIterable {
        case address, transportDestinationPort, l4proto, mark, randomNumber, fibDestinationType, fibSourceType, ctState, ctStatus
        case ctAddress, ctPort

        init(_ selector: Selector) {
            switch selector {
            case .address: self = .address
            case .transportDestinationPort: self = .transportDestinationPort
            case .l4proto: self = .l4proto
            case .mark: self = .mark
            case .randomNumber: self = .randomNumber
            case .fibDestinationType: self = .fibDestinationType
            case .fibSourceType: self = .fibSourceType
            case .ctState: self = .ctState
            case .ctStatus: self = .ctStatus
            case .ctAddress: self = .ctAddress
            case .ctPort: self = .ctPort
            }
        }
    }

    /// A value of `selector`'s type.
    private func sample(_ selector: Selector) -> Value {
        switch selector.dataType {
        case .ipv4Address: return .address(IPAddress("198.18.0.7")!)
        case .ipv6Address: return .address(IPAddress("2001:db8::7")!)
        case .inetProto: return .proto(TransportProtocol.udp.number)
        case .inetService: return .port(8443)
        case .mark, .integer32, .ctState, .ctStatus, .fibAddressType: return .integer(3)
        }
    }

    private func selectors(_ family: TableFamily) -> [Selector] {
        [.address(.source, family), .address(.destination, family), .transportDestinationPort, .l4proto, .mark,
         .randomNumber(modulus: 7), .fibDestinationType, .fibSourceType, .ctState, .ctStatus,
         .ctAddress(.destination, .original, family), .ctAddress(.source, .reply, family),
         .ctAddress(.source, .original, family), .ctAddress(.destination, .reply, family),
         .ctPort(.destination, .original), .ctPort(.source, .reply), .ctPort(.source, .original), .ctPort(.destination, .reply)]
    }

    private func statements(_ family: TableFamily) -> [Statement] {
        let daddr = Selector.address(.destination, family)
        let network = family == .ip ? IPAddress("10.96.0.0")! : IPAddress("fd00::")!
        var result: [Statement] = []
        for selector in selectors(family) {
            result.append(.compare(selector, negated: false, sample(selector)))
            result.append(.compare(selector, negated: true, sample(selector)))
        }
        result += [
            .prefix(daddr, network: network, length: 16, negated: false),
            .prefix(.address(.source, family), network: network, length: 12, negated: true),
            .bitTest(.ctState, mask: CtStateFlag.new, isSet: true),
            .bitTest(.ctStatus, mask: CtStatusFlag.destinationNAT, isSet: true),
            .bitTest(.mark, mask: 0x4000, isSet: false),
            .lookup([daddr], set: "cluster-ips"),
            .lookup([daddr, .l4proto, .transportDestinationPort], set: "service-ips"),
            .lookup([.ctAddress(.destination, .original, family), .l4proto, .ctPort(.destination, .original),
                     .ctAddress(.source, .reply, family), .ctPort(.source, .reply)], set: "endpoint-traffic"),
            .verdictMap([daddr, .l4proto, .transportDestinationPort], map: "service-dispatch"),
            .verdictMap([.l4proto, .transportDestinationPort, .randomNumber(modulus: 3)], map: "backends"),
            .setMarkBits(0x4000),
            .toggleMarkBits(0x4000),
            .verdict(.accept), .verdict(.drop), .verdict(.return), .verdict(.jump("services")), .verdict(.goto("svc-1")),
            .dnatMap([daddr, .l4proto, .transportDestinationPort, .randomNumber(modulus: 2)], map: "cluster-backends-2",
                     family: family),
            .masquerade(fullyRandom: false), .masquerade(fullyRandom: true),
            .reject(.tcpReset), .reject(.portUnreachable),
            .counter,
            .updateSet([.address(.source, family)], set: "affinity", timeout: nil),
            .updateSet([.address(.source, family), daddr, .transportDestinationPort], set: "affinity", timeout: 10_800_000),
            .updateMap([.address(.source, family), .ctAddress(.destination, .original, family), .l4proto, .ctPort(.destination, .original)],
                       data: [daddr, .transportDestinationPort], map: "affinity", timeout: 600_000),
            .updateMap([.address(.source, family), .l4proto, .ctPort(.destination, .original)],
                       data: [daddr, .transportDestinationPort], map: "nodeport-affinity", timeout: nil),
            .deleteFromMap([.address(.source, family), .ctAddress(.destination, .original, family), .l4proto, .ctPort(.destination, .original)],
                           data: [daddr, .transportDestinationPort], map: "affinity"),
        ]
        return result
    }

    /// The rule after a trip through the wire: encoded, written by libnftnl, parsed back, decoded.
    private func roundTrip(_ rule: Rule, family: TableFamily) throws -> Rule {
        let wire = RuleEncoder(family: family, setIDs: [:]).makeRule(rule, table: "nftproxy", chain: "services")
        let bytes = NetlinkMessageWriter.message(subsystem: .nftables, message: NftMessage.newRule,
                                                 family: family.protocolFamily) { message in
            do { try message.putRule(wire) } catch { XCTFail("\(error)") }
        }
        let parsed = try NetlinkMessageView.parse(bytes) { (view) throws(NetlinkError) in try NftRule(parsing: view) }
        XCTAssertEqual(parsed.expressions, wire.expressions, "libnftnl wrote and read back different expressions")
        return try RuleDecoder(family: family).decode(parsed.expressions)
    }

    func testEveryStatementKindRoundTrips() throws {
        for family in TableFamily.allCases {
            let samples = statements(family)
            XCTAssertEqual(Set(samples.map(StatementKind.init)), Set(StatementKind.allCases), "a statement kind has no sample")
            XCTAssertEqual(Set(selectors(family).map(SelectorKind.init)), Set(SelectorKind.allCases),
                           "a selector kind has no sample")
            for statement in samples {
                XCTAssertEqual(try roundTrip(Rule([statement]), family: family), Rule([statement]), "\(family) \(statement)")
            }
            // Statements in sequence, as the compiler chains them.
            XCTAssertEqual(try roundTrip(Rule(samples), family: family), Rule(samples))
        }
    }

    func testDecoderRefusesWhatTheEncoderNeverWrites() {
        let decoder = RuleDecoder(family: .ip)
        let reg1 = NftRegister.slot(0)
        let foreign: [[NftExpression]] = [
            [.unknown("quota")],
            [.payload(base: .network, offset: 9, length: 1, destination: reg1), .compare(source: reg1, op: .equal, data: [6])],
            [.metaLoad(key: .mark, destination: reg1)],
            [.verdict(code: VerdictCode.continue, chain: nil)],
            [.masquerade(flags: 0x40)],
            [.payload(base: .network, offset: 12, length: 4, destination: reg1),
             .dynset(operation: .add, set: "affinity", setID: nil, keyRegister: reg1, dataRegister: nil, timeout: nil,
                     expressions: [])],
            [.payload(base: .network, offset: 12, length: 4, destination: reg1),
             .dynset(operation: .delete, set: "affinity", setID: nil, keyRegister: reg1, dataRegister: nil, timeout: nil,
                     expressions: [])],
            [.ctLoad(key: .state, direction: 0, destination: reg1), .compare(source: reg1, op: .equal, data: [8, 0, 0, 0])],
            [.payload(base: .network, offset: 12, length: 4, destination: reg1),
             .dynset(operation: .update, set: "affinity", setID: nil, keyRegister: reg1, dataRegister: nil, timeout: nil,
                     expressions: [.counter(packets: 0, bytes: 0)])],
        ]
        for expressions in foreign {
            XCTAssertThrowsError(try decoder.decode(expressions), "\(expressions)") { error in
                XCTAssertFalse("\(error)".isEmpty)
            }
        }
    }

    func testSetDeclarationsAndElementsRoundTrip() throws {
        let sets: [NamedSet] = [
            NamedSet(name: "cluster-ips", key: .types([.ipv4Address]), size: 64,
                     elements: [SetElement(key: [.address(IPAddress("198.18.0.1")!)])]),
            NamedSet(name: "service-ips", key: .types([.ipv4Address, .inetProto, .inetService]), data: .verdict,
                     elements: [SetElement(key: [.address(IPAddress("198.18.0.1")!), .proto(6), .port(80)],
                                           data: .verdict(.goto("svc-1")))]),
            NamedSet(name: "cluster-backends-2",
                     key: .typeOf([.address(.destination, .ip), .l4proto, .transportDestinationPort, .randomNumber(modulus: 2)]),
                     data: .fields(.typeOf([.address(.destination, .ip), .transportDestinationPort])),
                     elements: [SetElement(key: [.address(IPAddress("198.18.0.1")!), .proto(17), .port(53), .integer(1)],
                                           data: .values([.address(IPAddress("198.19.1.11")!), .port(5353)]))]),
            NamedSet(name: "affinity", key: .types([.ipv4Address, .ipv4Address, .inetService]), size: 1024,
                     flags: [.dynamic], timeout: 10_800_000),
            NamedSet(name: "endpoint-counters", key: .types([.ipv4Address, .inetService]), flags: [.timeout], counter: true,
                     elements: [SetElement(key: [.address(IPAddress("198.19.1.11")!), .port(8080)]),
                                SetElement(key: [.address(IPAddress("198.19.1.12")!), .port(8080)], timeout: 30_000)]),
            NamedSet(name: "endpoint-traffic", key: .types([.ipv4Address, .inetProto, .inetService, .ipv4Address, .inetService]),
                     counter: true,
                     elements: [SetElement(key: [.address(IPAddress("198.18.0.1")!), .proto(6), .port(80),
                                                 .address(IPAddress("198.19.1.11")!), .port(8080)])
                                    .commented("default/web http node-1 local")]),
            NamedSet(name: "source-ranges", key: .types([.ipv4Address, .inetService, .ipv4Address]), size: 1024,
                     flags: [.interval],
                     elements: [SetElement(key: [.address(IPAddress("203.0.113.8")!), .port(80), .address(IPAddress("10.0.0.0")!)],
                                           keyEnd: [.address(IPAddress("203.0.113.8")!), .port(80),
                                                    .address(IPAddress("10.255.255.255")!)])]),
        ]
        let decoder = SetDecoder(family: .ip)
        for set in sets {
            var transaction = Transaction()
            transaction.append(.addSet(.ip, table: "nftproxy", set.withoutElements))
            let encoder = MessageEncoder(transaction: transaction)
            let wire = encoder.declaration(of: set, family: .ip, table: "nftproxy")
            let declaration = NetlinkMessageWriter.message(subsystem: .nftables, message: NftMessage.newSet,
                                                           family: NetfilterFamily.ipv4) { message in
                do { try message.putSet(wire) } catch { XCTFail("\(error)") }
            }
            let parsed = try NetlinkMessageView.parse(declaration) { (view) throws(NetlinkError) in try NftSet(parsing: view) }
            var read = try decoder.declaration(of: parsed)
            XCTAssertEqual(read, set.withoutElements)
            // The kernel dumps no element message for an empty set.
            guard !set.elements.isEmpty else { continue }

            // One message per element: libnftnl numbers the element nests of a message it
            // writes (the kernel ignores their type) but parses only nests of type 1.
            var parsedElements: [NftSetElement] = []
            for element in set.elements {
                let message = NetlinkMessageWriter.message(subsystem: .nftables, message: NftMessage.newElements,
                                                           family: NetfilterFamily.ipv4) { message in
                    let wire = NftSet(table: "nftproxy", name: set.name, elements: [MessageEncoder.wireElement(element)])
                    do { try message.putElements(wire) } catch { XCTFail("\(error)") }
                }
                parsedElements += try NetlinkMessageView.parse(message) { (view) throws(NetlinkError) in
                    try NftSet(parsingElements: view).elements
                }
            }
            read.elements = try parsedElements.map { try XCTUnwrap(decoder.element($0, of: read)) }
            XCTAssertEqual(read, set)
        }
    }
}
