import XCTest

@testable import Conntrack
import Netlink
import ServiceModel

/// Conntrack tests that need no kernel: filter matching and indexing, descriptions,
/// and parsing of ctnetlink messages built here.
final class ConntrackUnitTests: XCTestCase {
    private func udpFlow(
        _ client: String, _ clientPort: UInt16, to frontend: String, _ frontendPort: UInt16,
        endpoint: String, _ endpointPort: UInt16, dnat: Bool = true
    ) -> ConntrackFlow {
        ConntrackFlow(
            transport: .udp,
            original: FlowTuple(source: ctIP(client), destination: ctIP(frontend), sourcePort: clientPort, destinationPort: frontendPort),
            reply: FlowTuple(source: ctIP(endpoint), destination: ctIP(client), sourcePort: endpointPort, destinationPort: clientPort),
            status: dnat ? [.confirmed, .destinationNAT] : [.confirmed])
    }

    func testFilterFieldsAreWildcardsWhenNil() {
        let flow = udpFlow("198.51.100.7", 40000, to: "198.18.0.10", 53, endpoint: "198.19.1.11", 5353)
        XCTAssertTrue(ConntrackFilter(family: .v4, transport: .udp).matches(flow))
        XCTAssertFalse(ConntrackFilter(family: .v4, transport: .tcp).matches(flow))
        XCTAssertFalse(ConntrackFilter(family: .v6, transport: .udp).matches(flow))
        XCTAssertTrue(ConntrackFilter(family: .v4, transport: .udp, originalDestination: ctIP("198.18.0.10")).matches(flow))
        XCTAssertFalse(ConntrackFilter(family: .v4, transport: .udp, originalDestination: ctIP("198.18.0.11")).matches(flow))
        XCTAssertTrue(ConntrackFilter(family: .v4, transport: .udp, originalDestinationPort: 53).matches(flow))
        XCTAssertFalse(ConntrackFilter(family: .v4, transport: .udp, originalDestinationPort: 54).matches(flow))
        XCTAssertTrue(ConntrackFilter(family: .v4, transport: .udp, replySource: ctIP("198.19.1.11"), replySourcePort: 5353).matches(flow))
        XCTAssertFalse(ConntrackFilter(family: .v4, transport: .udp, replySourcePort: 5354).matches(flow))
        XCTAssertTrue(ConntrackFilter(family: .v4, transport: .udp, requireDestinationNAT: true).matches(flow))
        let direct = udpFlow("198.51.100.7", 40000, to: "198.19.1.11", 53, endpoint: "198.19.1.11", 53, dnat: false)
        XCTAssertFalse(ConntrackFilter(family: .v4, transport: .udp, requireDestinationNAT: true).matches(direct))
    }

    /// The index must agree with matching every filter one by one.
    func testFilterIndexAgreesWithLinearMatching() {
        var generator = SystemRandomNumberGenerator()
        let frontends = ["198.18.0.1", "198.18.0.2", "198.18.0.3"], endpoints = ["198.19.1.11", "198.19.1.12"]
        func pick<T>(_ values: [T]) -> T { values.randomElement(using: &generator)! }
        func maybe<T>(_ value: T) -> T? { Bool.random(using: &generator) ? value : nil }

        let filters: [ConntrackFilter] = (0..<60).map { _ in
            ConntrackFilter(
                family: Int.random(in: 0..<8, using: &generator) == 0 ? .v6 : .v4,
                transport: pick([.udp, .udp, .tcp]),
                originalDestination: maybe(ctIP(pick(frontends))),
                originalDestinationPort: maybe(pick([53, 80])),
                replySource: maybe(ctIP(pick(endpoints))),
                replySourcePort: maybe(pick([5353, 8080])),
                requireDestinationNAT: Bool.random(using: &generator))
        }
        let index = ConntrackFilterIndex(family: .v4, filters: filters)
        for _ in 0..<2000 {
            var flow = udpFlow(
                "198.51.100.7", UInt16.random(in: 1024...65535, using: &generator),
                to: pick(frontends), pick([53, 80]), endpoint: pick(endpoints), pick([5353, 8080]),
                dnat: Bool.random(using: &generator))
            flow.transport = pick([.udp, .tcp, .sctp])
            XCTAssertEqual(index.matches(flow), filters.contains { $0.matches(flow) }, "\(flow)")
        }
        // Filters with addresses of the wrong family match nothing, indexed or not.
        let wrong = ConntrackFilter(family: .v4, transport: .udp, originalDestination: ctIP("2001:db8::10"))
        let flow = udpFlow("198.51.100.7", 40000, to: "198.18.0.10", 53, endpoint: "198.19.1.11", 5353)
        XCTAssertFalse(wrong.matches(flow))
        XCTAssertTrue(ConntrackFilterIndex(family: .v4, filters: [wrong]).isEmpty)
        XCTAssertTrue(ConntrackFilterIndex(family: .v6, filters: filters.filter { $0.family == .v4 }).isEmpty)
    }

    func testDescriptions() {
        let flow = udpFlow("198.51.100.7", 40000, to: "198.18.0.10", 53, endpoint: "198.19.1.11", 5353)
        XCTAssertEqual(flow.description, "udp 198.51.100.7:40000 -> 198.18.0.10:53 reply 198.19.1.11:5353 -> 198.51.100.7:40000 [dnat]")
        XCTAssertEqual(ConntrackStatus([.seenReply, .assured, .destinationNAT]).description, "seen-reply,assured,dnat")
        XCTAssertEqual(ConntrackStatus(rawValue: 1 << 13 | 1 << 1).description, "seen-reply,0x2000")
        XCTAssertEqual(
            ConntrackFilter(family: .v6, transport: .udp, originalDestination: ctIP("2001:db8:ff::10"),
                            originalDestinationPort: 53, requireDestinationNAT: true).description,
            "udp IPv6 original destination [2001:db8:ff::10]:53, reply source *:*, dnat")
        XCTAssertEqual(
            ConntrackFilter(family: .v4, transport: .tcp, replySource: ctIP("198.19.1.11")).description,
            "tcp IPv4 original destination *:*, reply source 198.19.1.11:*")
    }

    /// A message as the kernel dumps it: both tuples, status, zone, ID and attributes the
    /// parser skips (timeout, a protocol-info nest).
    private func dumpedMessage(_ flow: ConntrackFlow, family: UInt8, rawID: UInt32) -> [UInt8] {
        NetlinkMessageWriter.message(subsystem: .conntrack, message: ConntrackWire.newEntry, family: family) { message in
            ConntrackMessage.putTuple(flow.original, transport: flow.transport, type: ConntrackWire.Attribute.originalTuple,
                                      into: message)
            ConntrackMessage.putTuple(flow.reply, transport: flow.transport, type: ConntrackWire.Attribute.replyTuple,
                                      into: message)
            message.nest(ConntrackWire.Attribute.protocolInfo) { info in info.put(1, u8: 3) }
            message.put(ConntrackWire.Attribute.status, bigEndian32: flow.status.rawValue)
            message.put(ConntrackWire.Attribute.timeout, bigEndian32: 30)
            message.put(ConntrackWire.Attribute.id, raw32: rawID)
            if flow.zone != 0 { message.put(ConntrackWire.Attribute.zone, bigEndian16: flow.zone) }
        }
    }

    private func parse(_ message: [UInt8], family: IPFamily) throws -> ConntrackFlow? {
        try NetlinkMessageView.parse(message) { (view) throws(NetlinkError) in try ConntrackMessage.flow(from: view, family: family) }
    }

    func testParsesDumpedEntries() throws {
        var flow = ConntrackFlow(
            transport: .sctp,
            original: FlowTuple(source: ctIP("2001:db8:1::1"), destination: ctIP("2001:db8:ff::10"), sourcePort: 40000, destinationPort: 38412),
            reply: FlowTuple(source: ctIP("2001:db8:1::11"), destination: ctIP("2001:db8:1::1"), sourcePort: 38412, destinationPort: 40000),
            status: [.confirmed, .destinationNAT, .seenReply], zone: 7, id: 0x1234_5678)
        let message = dumpedMessage(flow, family: NetfilterFamily.ipv6, rawID: 0x1234_5678)
        XCTAssertEqual(try parse(message, family: .v6), flow)
        // The other family's dump does not claim it.
        XCTAssertNil(try parse(message, family: .v4))

        // Protocols other than TCP/UDP/SCTP are skipped; a truncated message is malformed.
        flow.zone = 0
        var icmp = dumpedMessage(flow, family: NetfilterFamily.ipv6, rawID: 1)
        // CTA_PROTO_NUM of the original tuple (nla_len 5, nla_type 1, value 132): sctp -> icmpv6.
        let protocolAttribute: [UInt8] = [5, 0, UInt8(ConntrackWire.ProtocolAttribute.number), 0, 132]
        let position = try XCTUnwrap((0...(icmp.count - 5)).first { Array(icmp[$0..<$0 + 5]) == protocolAttribute })
        icmp[position + 4] = 58
        XCTAssertNil(try parse(icmp, family: .v6))
        XCTAssertThrowsError(try parse(Array(message.prefix(18)), family: .v6))
        // A message cut inside its tuples lacks attributes: malformed, not a crash.
        var cut = Array(message.prefix(60))
        withUnsafeBytes(of: UInt32(60).littleEndian) { cut.replaceSubrange(0..<4, with: $0) }
        XCTAssertThrowsError(try parse(cut, family: .v6))
    }
}

/// An IP address literal the test knows to be valid.
private func ctIP(_ text: String) -> IPAddress {
    guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
    return address
}
