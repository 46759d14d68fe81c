import Foundation
import XCTest

@testable import Conntrack
import Netlink
import ServiceModel

/// Kernel tests of the Conntrack module: real conntrack entries, made by real UDP and
/// TCP traffic through nft DNAT rules between two private namespaces (created and
/// removed by each test), listed and deleted over nfnetlink_conntrack.
final class ConntrackTests: XCTestCase {
    private var sandboxes: [ConntrackSandbox] = []
    private var sockets: [TestSocket] = []

    override func setUpWithError() throws {
        try conntrackRequireRoot()
    }

    override func tearDown() {
        sockets = []
        for sandbox in sandboxes { sandbox.remove() }
        sandboxes = []
        super.tearDown()
    }

    // MARK: Fixture

    /// DNAT rules in the node namespace, as a kube-proxy-like ruleset would have them:
    /// a DNS service 198.18.0.10:53 (UDP and TCP) -> 198.19.1.11:5353, a second service
    /// 198.18.0.20:53 -> 198.19.1.12:5353, and NodePort 30053 on the node's local
    /// addresses -> 198.19.1.12:5353; the same in IPv6 (2001:db8:ff::10 and ::20).
    private static let rules = """
        table ip nftp_ct_test {
            chain output {
                type nat hook output priority -100; policy accept;
                ip daddr 198.18.0.10 udp dport 53 dnat to 198.19.1.11:5353
                ip daddr 198.18.0.10 tcp dport 53 dnat to 198.19.1.11:5353
                ip daddr 198.18.0.20 udp dport 53 dnat to 198.19.1.12:5353
                ip daddr { 198.19.1.1, 203.0.113.1 } udp dport 30053 dnat to 198.19.1.12:5353
            }
        }
        table ip6 nftp_ct_test {
            chain output {
                type nat hook output priority -100; policy accept;
                ip6 daddr 2001:db8:ff::10 udp dport 53 dnat to [2001:db8:1::11]:5353
                ip6 daddr 2001:db8:ff::10 tcp dport 53 dnat to [2001:db8:1::11]:5353
                ip6 daddr 2001:db8:ff::20 udp dport 53 dnat to [2001:db8:1::12]:5353
            }
        }
        """

    /// A sandbox with the DNAT rules loaded, removed in tearDown.
    private func makeSandbox(rules: String = ConntrackTests.rules) throws -> ConntrackSandbox {
        let sandbox = try ConntrackSandbox()
        sandboxes.append(sandbox)
        if !rules.isEmpty { try sandbox.nft(rules) }
        return sandbox
    }

    /// A socket kept open until tearDown.
    private func openSocket(_ namespace: NetworkNamespace, _ family: IPFamily, tcp: Bool = false) throws -> TestSocket {
        let socket = try TestSocket(in: namespace, family: family, tcp: tcp)
        sockets.append(socket)
        return socket
    }

    /// Sends one datagram from a new client socket in the node namespace; returns the
    /// client's port (the original tuple's source port).
    @discardableResult
    private func sendDatagram(
        _ sandbox: ConntrackSandbox, to address: String, _ port: UInt16, family: IPFamily = .v4
    ) throws -> UInt16 {
        let client = try openSocket(sandbox.node, family)
        try client.send(to: ctIP(address), port)
        return client.localPort
    }

    /// Opens a TCP connection from the node namespace to `address:port`, where a
    /// listener in the endpoint namespace (at the DNAT target) accepts it; returns the
    /// client's port.
    private func connect(
        _ sandbox: ConntrackSandbox, listener: String, to address: String, _ port: UInt16, family: IPFamily = .v4
    ) throws -> UInt16 {
        let server = try openSocket(sandbox.endpoints, family, tcp: true)
        try server.bind(ctIP(listener), 5353)
        try server.listen()
        let client = try openSocket(sandbox.node, family, tcp: true)
        try client.connect(ctIP(address), port)
        return client.localPort
    }

    /// The listed flow of `transport` whose original source port is `port`.
    private func flow(
        _ flows: [ConntrackFlow], _ transport: TransportProtocol = .udp, port: UInt16,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> ConntrackFlow {
        let matching = flows.filter { $0.transport == transport && $0.original.sourcePort == port }
        XCTAssertEqual(matching.count, 1, "\(transport) flows from port \(port) in \(flows)", file: file, line: line)
        return try XCTUnwrap(matching.first, file: file, line: line)
    }

    /// Original tuples of `flows`, for comparing what is left in a table.
    private func originals(_ flows: [ConntrackFlow]) -> Set<String> {
        Set(flows.map { "\($0.transport) \($0.original)" })
    }

    // MARK: Listing

    func testFlowsListOriginalAndReplyTuplesAndDestinationNAT() throws {
        let sandbox = try makeSandbox()
        let vip = ctIP("198.18.0.10"), endpoint = ctIP("198.19.1.11"), client = ctIP("198.19.1.1")

        // A DNS query DNATed to the endpoint, which answers: the client sees the answer
        // come from the service address.
        let server = try openSocket(sandbox.endpoints, .v4)
        try server.bind(endpoint, 5353)
        let answered = try openSocket(sandbox.node, .v4)
        try answered.send(to: vip, 53, "query")
        let query = try XCTUnwrap(try server.receive(), "the endpoint did not receive the DNATed query")
        XCTAssertEqual(query.address, client)
        try server.send(to: query.address, query.port, "answer")
        let answer = try XCTUnwrap(try answered.receive(), "the client did not receive the answer")
        XCTAssertEqual(answer.text, "answer")
        XCTAssertEqual(answer.address, vip)
        XCTAssertEqual(answer.port, 53)
        let answeredPort = answered.localPort

        let unanswered = try sendDatagram(sandbox, to: "198.18.0.10", 53)
        let direct = try sendDatagram(sandbox, to: "198.19.1.11", 7777)
        let tcp = try connect(sandbox, listener: "198.19.1.11", to: "198.18.0.10", 53)

        let table = ConntrackTable(socket: try sandbox.socket())
        let flows = try table.flows(family: .v4)

        let first = try flow(flows, port: answeredPort)
        XCTAssertEqual(first.transport, .udp)
        XCTAssertEqual(first.original, FlowTuple(source: client, destination: vip, sourcePort: answeredPort, destinationPort: 53))
        XCTAssertEqual(first.reply, FlowTuple(source: endpoint, destination: client, sourcePort: 5353, destinationPort: answeredPort))
        XCTAssertTrue(first.isDestinationNAT, "\(first.status)")
        XCTAssertTrue(first.status.contains([.seenReply, .confirmed]), "\(first.status)")
        XCTAssertFalse(first.status.contains(.sourceNAT))
        XCTAssertEqual(first.zone, 0)
        XCTAssertNotNil(first.id)
        XCTAssertEqual(
            first.description,
            "udp 198.19.1.1:\(answeredPort) -> 198.18.0.10:53 reply 198.19.1.11:5353 -> 198.19.1.1:\(answeredPort) [dnat]")

        // A reply-less DNATed flow still has the endpoint as its reply source.
        let second = try flow(flows, port: unanswered)
        XCTAssertEqual(second.original.destination, vip)
        XCTAssertEqual(second.reply.source, endpoint)
        XCTAssertEqual(second.reply.sourcePort, 5353)
        XCTAssertTrue(second.isDestinationNAT)
        XCTAssertFalse(second.status.contains(.seenReply))

        let third = try flow(flows, port: direct)
        XCTAssertEqual(third.original.destination, endpoint)
        XCTAssertEqual(third.reply.source, endpoint)
        XCTAssertEqual(third.reply.sourcePort, 7777)
        XCTAssertFalse(third.isDestinationNAT)

        let connection = try flow(flows, .tcp, port: tcp)
        XCTAssertEqual(connection.original.destination, vip)
        XCTAssertEqual(connection.reply.source, endpoint)
        XCTAssertTrue(connection.status.contains([.destinationNAT, .seenReply]))

        // Transport and family narrow the listing.
        let udp = try table.flows(family: .v4, transport: .udp)
        XCTAssertTrue(udp.allSatisfy { $0.transport == .udp })
        XCTAssertEqual(Set(udp), Set(flows.filter { $0.transport == .udp }).intersection(udp))
        XCTAssertEqual(Set(udp.map(\.original.sourcePort)).intersection([answeredPort, unanswered, direct]).count, 3)
        XCTAssertEqual(try table.flows(family: .v4, transport: .tcp).map(\.original.sourcePort), [tcp])
        XCTAssertTrue(try table.flows(family: .v4, transport: .sctp).isEmpty)
        XCTAssertTrue(try table.flows(family: .v6).allSatisfy { $0.family == .v6 })
        XCTAssertFalse(try table.flows(family: .v6).contains { [answeredPort, unanswered, direct, tcp].contains($0.original.sourcePort) })

        // Cross-check with conntrack(8): every listed flow appears once, and no TCP/UDP flow is missing.
        let listing = try sandbox.conntrackTool(["-L", "-f", "ipv4"])
        for flow in flows {
            XCTAssertEqual(conntrackToolLines(listing, describing: flow).count, 1, "\(flow) in\n\(listing)")
        }
        let toolCount = listing.split(separator: "\n").filter { $0.hasPrefix("udp ") || $0.hasPrefix("tcp ") }.count
        XCTAssertEqual(toolCount, flows.count, listing)
    }

    // MARK: Deleting

    func testDeleteMatchingServiceEndpointDeletesExactlyThoseFlows() throws {
        let sandbox = try makeSandbox()
        let stale = [
            try sendDatagram(sandbox, to: "198.18.0.10", 53),
            try sendDatagram(sandbox, to: "198.18.0.10", 53),
        ]
        let otherService = try sendDatagram(sandbox, to: "198.18.0.20", 53)
        let otherDestination = try sendDatagram(sandbox, to: "198.19.1.11", 7777)
        let tcp = try connect(sandbox, listener: "198.19.1.11", to: "198.18.0.10", 53)

        let table = ConntrackTable(socket: try sandbox.socket())
        let before = try table.flows(family: .v4)
        XCTAssertEqual(before.count, 5, "\(before)")
        let filter = ConntrackFilter(
            family: .v4, transport: .udp,
            originalDestination: ctIP("198.18.0.10"), originalDestinationPort: 53,
            replySource: ctIP("198.19.1.11"), replySourcePort: 5353)
        XCTAssertEqual(before.filter(filter.matches).map(\.original.sourcePort).sorted(), stale.sorted())

        XCTAssertEqual(try table.delete(matching: [filter]), 2)

        let after = try table.flows(family: .v4)
        XCTAssertEqual(originals(after), originals(before.filter { !stale.contains($0.original.sourcePort) }))
        XCTAssertEqual(try flow(after, port: otherService).reply.source, ctIP("198.19.1.12"))
        XCTAssertEqual(try flow(after, port: otherDestination).original.destinationPort, 7777)
        XCTAssertEqual(try flow(after, .tcp, port: tcp).reply.source, ctIP("198.19.1.11"))

        let listing = try sandbox.conntrackTool(["-L", "-f", "ipv4"])
        for flow in before where stale.contains(flow.original.sourcePort) {
            XCTAssertTrue(conntrackToolLines(listing, describing: flow).isEmpty, "\(flow) still listed:\n\(listing)")
        }

        // Nothing left to delete: 0, not an error.
        XCTAssertEqual(try table.delete(matching: [filter]), 0)
        XCTAssertEqual(try table.delete(matching: []), 0)
    }

    /// The reason for all this: after an endpoint change, a UDP client that keeps its
    /// source port keeps going to the old endpoint until its entry is deleted.
    func testDeletingAStaleFlowSendsTheClientToTheNewEndpoint() throws {
        let rule = { (endpoint: String) in
            """
            table ip nftp_ct_test {
                chain output {
                    type nat hook output priority -100; policy accept;
                    ip daddr 198.18.0.10 udp dport 53 dnat to \(endpoint):5353
                }
            }
            """
        }
        let sandbox = try makeSandbox(rules: rule("198.19.1.11"))
        let oldEndpoint = try openSocket(sandbox.endpoints, .v4)
        try oldEndpoint.bind(ctIP("198.19.1.11"), 5353)
        let newEndpoint = try openSocket(sandbox.endpoints, .v4)
        try newEndpoint.bind(ctIP("198.19.1.12"), 5353)
        let client = try openSocket(sandbox.node, .v4)
        let vip = ctIP("198.18.0.10")
        let table = ConntrackTable(socket: try sandbox.socket())

        try client.send(to: vip, 53, "one")
        XCTAssertEqual(try oldEndpoint.receive()?.text, "one")

        // The endpoint changes; the client's entry still points at the old one.
        try sandbox.nft("flush table ip nftp_ct_test\n" + rule("198.19.1.12"))
        try client.send(to: vip, 53, "two")
        XCTAssertEqual(try oldEndpoint.receive()?.text, "two")
        XCTAssertNil(try newEndpoint.receive(milliseconds: 200))
        XCTAssertEqual(try flow(try table.flows(family: .v4), port: client.localPort).reply.source, ctIP("198.19.1.11"))

        let deleted = try table.delete(matching: [
            ConntrackFilter(
                family: .v4, transport: .udp, originalDestination: vip, originalDestinationPort: 53,
                replySource: ctIP("198.19.1.11"), replySourcePort: 5353),
        ])
        XCTAssertEqual(deleted, 1)

        try client.send(to: vip, 53, "three")
        XCTAssertEqual(try newEndpoint.receive()?.text, "three")
        XCTAssertNil(try oldEndpoint.receive(milliseconds: 200))
        XCTAssertEqual(try flow(try table.flows(family: .v4), port: client.localPort).reply.source, ctIP("198.19.1.12"))
    }

    func testNodePortFilterMatchesThePortOnAnyLocalAddressAndRequiresDestinationNAT() throws {
        let sandbox = try makeSandbox()
        let viaNodeAddress = try sendDatagram(sandbox, to: "198.19.1.1", 30053)
        let viaSecondAddress = try sendDatagram(sandbox, to: "203.0.113.1", 30053)
        let notTranslated = try sendDatagram(sandbox, to: "198.19.1.11", 30053)
        let otherService = try sendDatagram(sandbox, to: "198.18.0.20", 53)

        let table = ConntrackTable(socket: try sandbox.socket())
        let before = try table.flows(family: .v4)
        XCTAssertEqual(before.count, 4, "\(before)")
        XCTAssertEqual(try flow(before, port: viaNodeAddress).original.destination, ctIP("198.19.1.1"))
        XCTAssertEqual(try flow(before, port: viaSecondAddress).original.destination, ctIP("203.0.113.1"))
        XCTAssertTrue(try flow(before, port: viaSecondAddress).isDestinationNAT)
        XCTAssertFalse(try flow(before, port: notTranslated).isDestinationNAT)

        let nodePort = ConntrackFilter(family: .v4, transport: .udp, originalDestinationPort: 30053, requireDestinationNAT: true)
        // Without the DNAT requirement the port alone would also catch the untranslated flow.
        var portOnly = nodePort
        portOnly.requireDestinationNAT = false
        XCTAssertEqual(before.filter(portOnly.matches).count, 3)

        XCTAssertEqual(try table.delete(matching: [nodePort]), 2)
        let after = try table.flows(family: .v4)
        XCTAssertEqual(Set(after.map(\.original.sourcePort)), [notTranslated, otherService])

        // Per endpoint, as kube-proxy does it: port and endpoint. Nothing of that is left.
        let perEndpoint = ConntrackFilter(
            family: .v4, transport: .udp, originalDestinationPort: 30053,
            replySource: ctIP("198.19.1.12"), replySourcePort: 5353, requireDestinationNAT: true)
        XCTAssertEqual(try table.delete(matching: [perEndpoint]), 0)
        XCTAssertEqual(try table.flows(family: .v4).count, 2)
    }

    func testIPv6FlowsAreListedAndDeleted() throws {
        let sandbox = try makeSandbox()
        let vip = ctIP("2001:db8:ff::10"), endpoint = ctIP("2001:db8:1::11"), client = ctIP("2001:db8:1::1")

        let server = try openSocket(sandbox.endpoints, .v6)
        try server.bind(endpoint, 5353)
        let answered = try openSocket(sandbox.node, .v6)
        try answered.send(to: vip, 53, "query")
        let query = try XCTUnwrap(try server.receive(), "the endpoint did not receive the DNATed query")
        try server.send(to: query.address, query.port, "answer")
        XCTAssertEqual(try answered.receive()?.address, vip)

        let unanswered = try sendDatagram(sandbox, to: "2001:db8:ff::10", 53, family: .v6)
        let otherService = try sendDatagram(sandbox, to: "2001:db8:ff::20", 53, family: .v6)
        let otherDestination = try sendDatagram(sandbox, to: "2001:db8:1::11", 7777, family: .v6)
        let tcp = try connect(sandbox, listener: "2001:db8:1::11", to: "2001:db8:ff::10", 53, family: .v6)
        let ipv4 = try sendDatagram(sandbox, to: "198.18.0.10", 53)

        let table = ConntrackTable(socket: try sandbox.socket())
        let before = try table.flows(family: .v6)
        XCTAssertEqual(before.count, 5, "\(before)")
        let first = try flow(before, port: answered.localPort)
        XCTAssertEqual(first.original, FlowTuple(source: client, destination: vip, sourcePort: answered.localPort, destinationPort: 53))
        XCTAssertEqual(first.reply, FlowTuple(source: endpoint, destination: client, sourcePort: 5353, destinationPort: answered.localPort))
        XCTAssertTrue(first.status.contains([.destinationNAT, .seenReply]))
        XCTAssertEqual(first.family, .v6)
        XCTAssertTrue(first.description.hasPrefix("udp [2001:db8:1::1]:\(answered.localPort) -> [2001:db8:ff::10]:53 reply [2001:db8:1::11]:5353"))
        XCTAssertTrue(try flow(before, port: unanswered).isDestinationNAT)
        XCTAssertEqual(try flow(before, .tcp, port: tcp).reply.source, endpoint)

        let listing = try sandbox.conntrackTool(["-L", "-f", "ipv6"])
        for flow in before {
            XCTAssertEqual(conntrackToolLines(listing, describing: flow).count, 1, "\(flow) in\n\(listing)")
        }

        // An IPv4 filter for the same ports, and the IPv6 one; only IPv6 entries of the
        // IPv6 service endpoint go.
        let deleted = try table.delete(matching: [
            ConntrackFilter(family: .v6, transport: .udp, originalDestination: vip, originalDestinationPort: 53,
                            replySource: endpoint, replySourcePort: 5353),
            ConntrackFilter(family: .v4, transport: .udp, originalDestination: ctIP("198.18.0.99"),
                            originalDestinationPort: 53),
        ])
        XCTAssertEqual(deleted, 2)
        let after = try table.flows(family: .v6)
        XCTAssertEqual(Set(after.map(\.original.sourcePort)), [otherService, otherDestination, tcp])
        XCTAssertEqual(try table.flows(family: .v4).map(\.original.sourcePort), [ipv4])
    }

    func testDeleteFlowsIgnoresVanishedAndReplacedEntries() throws {
        let sandbox = try makeSandbox(rules: "")
        let socket = try sandbox.socket()
        let table = ConntrackTable(socket: socket)
        let made = [40001, 40002, 40003].map { port in
            ConntrackFlow(
                transport: .udp,
                original: FlowTuple(source: ctIP("198.51.100.7"), destination: ctIP("198.18.0.10"),
                                    sourcePort: UInt16(port), destinationPort: 53),
                reply: FlowTuple(source: ctIP("198.19.1.11"), destination: ctIP("198.51.100.7"),
                                 sourcePort: 5353, destinationPort: UInt16(port)))
        }
        XCTAssertEqual(try ConntrackEntryFactory.create(made, on: socket).map(\.errno), [0, 0, 0])
        let listed = try table.flows(family: .v4).sorted { $0.original.sourcePort < $1.original.sourcePort }
        XCTAssertEqual(listed.map(\.original), made.map(\.original))
        XCTAssertEqual(listed.map(\.reply), made.map(\.reply))
        XCTAssertTrue(listed.allSatisfy { $0.id != nil })

        // Deleted once (a duplicate in the list is deleted once), then gone: 0, no error.
        XCTAssertEqual(try table.delete([listed[0], listed[0]]), 1)
        XCTAssertEqual(try table.delete([listed[0]]), 0)

        // A different kernel ID stands for an entry that was replaced: left alone.
        var replaced = listed[1]
        replaced.id = listed[1].id.map { $0 &+ 1 }
        XCTAssertEqual(try table.delete([replaced]), 0)
        XCTAssertEqual(try table.flows(family: .v4).count, 2)
        // Without an ID the tuple alone decides.
        replaced.id = nil
        XCTAssertEqual(try table.delete([replaced, listed[2]]), 2)
        XCTAssertTrue(try table.flows(family: .v4).isEmpty)
        XCTAssertEqual(try table.delete([]), 0)

        // A hand-made flow mixing families is refused before anything is sent.
        var mixed = made[0]
        mixed.original.destination = ctIP("2001:db8::10")
        XCTAssertThrowsError(try table.delete([mixed])) { error in
            guard case .rejected(_, EINVAL, _)? = error as? NetlinkError else { return XCTFail("unexpected \(error)") }
        }
    }

    func testEntriesInOtherZonesAreListedAndDeletedInTheirZone() throws {
        let sandbox = try makeSandbox(rules: "")
        let socket = try sandbox.socket()
        let table = ConntrackTable(socket: socket)
        let tuple = ConntrackFlow(
            transport: .tcp,
            original: FlowTuple(source: ctIP("198.51.100.7"), destination: ctIP("198.18.0.10"), sourcePort: 40000, destinationPort: 80),
            reply: FlowTuple(source: ctIP("198.19.1.11"), destination: ctIP("198.51.100.7"), sourcePort: 8080, destinationPort: 40000))
        var zoned = tuple
        zoned.zone = 5
        XCTAssertEqual(try ConntrackEntryFactory.create([tuple, zoned], on: socket).map(\.errno), [0, 0])

        let listed = try table.flows(family: .v4, transport: .tcp)
        XCTAssertEqual(listed.map(\.zone).sorted(), [0, 5])
        XCTAssertTrue(try XCTUnwrap(listed.first { $0.zone == 5 }).description.hasSuffix(" zone 5"))

        // The same tuple in two zones: a filter matches both, and each is deleted in its own zone.
        XCTAssertEqual(try table.delete(listed.filter { $0.zone == 5 }), 1)
        XCTAssertEqual(try table.flows(family: .v4).map(\.zone), [0])
        XCTAssertEqual(try ConntrackEntryFactory.create([zoned], on: socket).map(\.errno), [0])
        XCTAssertEqual(try table.delete(matching: [ConntrackFilter(family: .v4, transport: .tcp, originalDestinationPort: 80)]), 2)
        XCTAssertTrue(try table.flows(family: .v4).isEmpty)
    }

    /// Outcomes of a request list come back one per request, in order, across datagrams.
    func testRequestListReportsEachOutcomeInOrder() throws {
        let sandbox = try makeSandbox(rules: "")
        let socket = try sandbox.socket()
        let flows = (0..<3_000).map { index in
            ConntrackFlow(
                transport: .udp,
                original: FlowTuple(source: ctIP("198.51.100.9"), destination: ctIP("198.18.0.10"),
                                    sourcePort: UInt16(20_000 + index), destinationPort: 53),
                reply: FlowTuple(source: ctIP("198.19.1.11"), destination: ctIP("198.51.100.9"),
                                 sourcePort: 5353, destinationPort: UInt16(20_000 + index)))
        }
        // Every seventh request repeats an earlier entry: NLM_F_EXCL makes the kernel refuse it.
        let requests = flows.enumerated().map { index, flow in index % 7 == 6 ? flows[index - 3] : flow }
        let outcomes = try ConntrackEntryFactory.create(requests, on: socket)
        XCTAssertEqual(outcomes.count, requests.count)
        for (index, outcome) in outcomes.enumerated() {
            XCTAssertEqual(outcome.errno, index % 7 == 6 ? EEXIST : 0, "request \(index)")
        }
        XCTAssertEqual(try ConntrackTable(socket: socket).flows(family: .v4).count, requests.count - requests.count / 7)
        XCTAssertEqual(try socket.perform(NetlinkRequestList()), [])
    }

    /// 100,000 entries: listing and deleting half of them with thousands of filters
    /// stays linear (the filters are indexed, the deletes pipelined).
    func testLargeTableIsListedAndPrunedInLinearTime() throws {
        let sandbox = try makeSandbox(rules: "")
        let socket = try sandbox.socket()
        let table = ConntrackTable(socket: socket)
        let total = 100_000, services = 200

        func service(_ index: Int) -> Int { index % services }
        var made: [ConntrackFlow] = []
        made.reserveCapacity(total)
        for index in 0..<total {
            let client = ctIP("198.51.100.\(index % 250 + 1)")
            let port = UInt16(10_000 + index / 250)
            let k = service(index)
            made.append(ConntrackFlow(
                transport: .udp,
                original: FlowTuple(source: client, destination: ctIP("198.18.0.\(k + 1)"), sourcePort: port, destinationPort: 53),
                reply: FlowTuple(source: ctIP("203.0.113.\(k + 1)"), destination: client, sourcePort: 5353, destinationPort: port)))
        }

        var start = Date()
        let outcomes = try ConntrackEntryFactory.create(made, on: socket)
        let createTime = Date().timeIntervalSince(start)
        XCTAssertEqual(outcomes.filter { !$0.succeeded }.count, 0, "\(outcomes.first { !$0.succeeded }.map { "\($0)" } ?? "")")

        start = Date()
        let listed = try table.flows(family: .v4)
        let listTime = Date().timeIntervalSince(start)
        XCTAssertEqual(listed.count, total)

        // Half of the services lose their endpoint; thousands of other filters match nothing.
        var filters: [ConntrackFilter] = (0..<services / 2).map { k in
            ConntrackFilter(family: .v4, transport: .udp,
                            originalDestination: ctIP("198.18.0.\(k + 1)"), originalDestinationPort: 53,
                            replySource: ctIP("203.0.113.\(k + 1)"), replySourcePort: 5353)
        }
        for k in 0..<2_000 {
            filters.append(ConntrackFilter(family: .v4, transport: .udp,
                                           originalDestination: ctIP("198.18.0.\(k % 250 + 1)"), originalDestinationPort: 54))
            filters.append(ConntrackFilter(family: .v4, transport: .tcp, originalDestinationPort: UInt16(30_000 + k),
                                           requireDestinationNAT: true))
        }
        start = Date()
        let deleted = try table.delete(matching: filters)
        let deleteTime = Date().timeIntervalSince(start)
        XCTAssertEqual(deleted, total / 2)

        let left = try table.flows(family: .v4)
        XCTAssertEqual(left.count, total / 2)
        XCTAssertTrue(left.allSatisfy { Int($0.original.destination.bytes[3]) > services / 2 })

        print(String(format: "conntrack, %d entries: create %.2f s, list %.2f s, delete %d with %d filters %.2f s",
                     total, createTime, listTime, deleted, filters.count, deleteTime))
        // Generous bounds: quadratic behaviour would take minutes, not seconds.
        XCTAssertLessThan(listTime, 20)
        XCTAssertLessThan(deleteTime, 40)
    }
}
