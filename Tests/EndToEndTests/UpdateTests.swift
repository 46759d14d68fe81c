import Foundation
import ProxyEngine
import Sandbox
import ServiceModel
import XCTest

/// Updates under live traffic: established TCP connections survive, UDP clients follow
/// their service when their endpoint goes away (stale conntrack entries are deleted).
final class UpdateTests: XCTestCase {
    private var topology: Topology?

    override func tearDown() {
        if let topology {
            topology.destroy()
            XCTAssertTrue(Topology.leftovers(prefix: topology.prefix).isEmpty, "left behind: \(Topology.leftovers(prefix: topology.prefix))")
        }
        topology = nil
    }

    private let node = NodeConfig(nodeName: "node-1", clusterCIDRs: [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])
    private let sessionPort: UInt16 = 9000

    /// A topology with session echo servers (TCP and UDP on 9000) in pod-1..3.
    private func makeTopology() throws -> (Topology, String) {
        guard geteuid() == 0 else { throw XCTSkip("requires root: end-to-end tests build network namespaces") }
        let echo = try BuiltProducts.path(of: "nftproxy-echo")
        let topology = try Topology.create()
        self.topology = topology
        for pod in topology.pods(on: "node-1") {
            let server = try topology.spawn(in: pod.host, [echo, "serve", "--name", pod.name, "--port", String(sessionPort),
                                                           "--session-port", String(sessionPort), "--tcp", "--udp",
                                                           "--exit-with-stdin", "--label", topology.prefix])
            try server.waitForLine("ready")
        }
        return (topology, echo)
    }

    private func service(_ name: String, ip: String, transport: TransportProtocol = .tcp, port: UInt16 = 80,
                         nodePort: UInt16? = nil, endpoints: [String], targetPort: UInt16? = nil) -> Service {
        Service(name: ServiceName(namespace: "default", name: name), clusterIPs: [IPAddress(ip)!],
                ports: [ServicePort(name: "", transport: transport, port: port, nodePort: nodePort,
                                    endpoints: endpoints.map { Endpoint(address: IPAddress($0)!, port: targetPort ?? sessionPort) })])
    }

    /// Waits until the process has printed at least `count` lines.
    private func waitForLines(_ process: BackgroundProcess, _ count: Int) throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while process.lines.count < count {
            guard ContinuousClock.now < deadline, process.isRunning else {
                throw Failure.noReplies(count, process.lines, process.stderr)
            }
            usleep(10_000)
        }
    }

    private enum Failure: Error { case noReplies(Int, [String], String) }

    func testEstablishedTCPConnectionSurvivesHundredUnrelatedUpdates() throws {
        let (topology, echo) = try makeTopology()
        let proxy = try ServiceProxy(node: node, networkNamespace: topology.node1.namespace)
        let pods = topology.pods(on: "node-1").map(\.ipv4)
        let web = service("web", ip: "198.18.0.10", nodePort: 32000, endpoints: pods)
        try proxy.apply(ServiceMap(services: [web]))

        // One TCP connection from the external client to the NodePort, one exchange every 20 ms.
        let session = try topology.spawn(in: topology.client, [echo, "session", "--tcp", "192.0.2.10", "32000",
                                                               "--count", "250", "--interval-ms", "20"])
        try waitForLines(session, 2)

        // 100 updates of other services: endpoints come and go, buckets (chains and maps) appear and vanish.
        for update in 0..<100 {
            let others = (0..<(update % 7 + 1)).map { index in
                service("other-\(index)", ip: "198.18.1.\(index + 1)", nodePort: UInt16(31000 + index),
                        endpoints: Array(pods.prefix((update + index) % 3 + 1)))
            }
            let report = try proxy.apply(ServiceMap(services: [web] + others))
            XCTAssertGreaterThan(report.sync.operations, 0, "update \(update) changed nothing")
        }
        XCTAssertTrue(session.wait(timeout: .seconds(15)), "session did not finish")
        let replies = session.lines
        XCTAssertEqual(session.exitStatus, 0, "the connection broke: \(replies.suffix(5))")
        XCTAssertEqual(replies.count, 250)
        let servers = Set(replies.compactMap { $0.split(separator: " ").first.map(String.init) })
        XCTAssertEqual(servers.count, 1, "one connection must stay with one endpoint: \(servers)")
    }

    func testEstablishedTCPConnectionSurvivesTheTableBeingRecreated() throws {
        let (topology, echo) = try makeTopology()
        let proxy = try ServiceProxy(node: node, networkNamespace: topology.node1.namespace)
        let web = service("web", ip: "198.18.0.10", nodePort: 32000, endpoints: topology.pods(on: "node-1").map(\.ipv4))
        try proxy.apply(ServiceMap(services: [web]))
        let session = try topology.spawn(in: topology.client, [echo, "session", "--tcp", "192.0.2.10", "32000",
                                                               "--count", "100", "--interval-ms", "20"])
        try waitForLines(session, 2)

        // 1,100 more services outgrow the sets (size 1,024): the table is replaced as a whole.
        let many = (0..<1100).map { index in
            service("many-\(index)", ip: "198.18.\(2 + index / 250).\(index % 250 + 1)", endpoints: [])
        }
        let report = try proxy.apply(ServiceMap(services: [web] + many))
        XCTAssertFalse(report.incremental)
        XCTAssertTrue(report.sync.summaries.contains("delete table ip nftproxy"), "\(report.sync.summaries.prefix(3))")

        XCTAssertTrue(session.wait(timeout: .seconds(15)), "session did not finish")
        XCTAssertEqual(session.exitStatus, 0, "the connection broke: \(session.lines.suffix(5))")
        XCTAssertEqual(session.lines.count, 100)
        XCTAssertEqual(Set(session.lines.compactMap { $0.split(separator: " ").first }).count, 1)
        // New connections are served by the new table.
        let fresh = try EchoClient(binary: echo).request(from: topology.client, .tcp, to: "192.0.2.10", port: 32000, count: 3)
        XCTAssertTrue(fresh.allSatisfy { $0.name != nil }, "\(fresh)")
    }

    func testUDPClientMovesToANewEndpointWhenItsEndpointIsRemoved() throws {
        let (topology, echo) = try makeTopology()
        let proxy = try ServiceProxy(node: node, networkNamespace: topology.node1.namespace)
        let (pod1, pod2, pod3) = (topology.pods[0], topology.pods[1], topology.pods[2])
        func dns(_ endpoint: Pod) -> ServiceMap {
            ServiceMap(services: [service("dns", ip: "198.18.0.53", transport: .udp, port: 53, endpoints: [endpoint.ipv4])])
        }
        try proxy.apply(dns(pod1))

        // pod-2 sends from one UDP socket every 30 ms: one conntrack entry, DNATed to pod-1.
        let client = try topology.spawn(in: pod2.host, [echo, "session", "--udp", "198.18.0.53", "53",
                                                        "--count", "80", "--interval-ms", "30"])
        try waitForLines(client, 3)
        // pod-1 keeps running (like a pod that was only removed from the service); without
        // deleting the entry, the client would keep reaching it.
        let report = try proxy.apply(dns(pod3))
        XCTAssertGreaterThanOrEqual(report.flowsDeleted, 1, "the stale entry was not deleted")

        XCTAssertTrue(client.wait(timeout: .seconds(15)), "client did not finish")
        let lines = client.lines
        // A datagram in flight at the moment of the switch may be lost; nothing else may be.
        XCTAssertLessThanOrEqual(lines.filter { $0 == "timeout" }.count, 1, "\(lines)")
        let servers = lines.filter { $0 != "timeout" }.map { $0.split(separator: " ").first.map(String.init) ?? $0 }
        XCTAssertEqual(servers.first, pod1.name)
        guard let switchPoint = servers.firstIndex(of: pod3.name) else {
            return XCTFail("the client never reached \(pod3.name): \(servers)")
        }
        XCTAssertEqual(Set(servers[switchPoint...]), [pod3.name], "after the switch only the new endpoint answers: \(servers)")
        XCTAssertTrue(servers[..<switchPoint].allSatisfy { $0 == pod1.name }, "\(servers)")
        XCTAssertGreaterThan(servers.count - switchPoint, 40, "the client moved late: \(servers)")
    }
}
