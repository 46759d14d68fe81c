import Conntrack
import ProxyEngine
import ProxyEngineTesting
import ServiceModel
import XCTest

/// Which conntrack entries `ServiceProxy` deletes after a change: UDP entries DNATed to an
/// endpoint that left, or to a frontend that went away or gained its first endpoints; never TCP.
final class ConntrackCleanupTests: XCTestCase {
    private let node = NodeConfig(nodeName: "node-1", nodeIPs: [IPAddress("192.0.2.10")!],
                                  clusterCIDRs: [CIDR("198.19.0.0/16")!])
    private let client = IPAddress("198.51.100.7")!

    private func service(_ name: String, clusterIP: String, _ transport: TransportProtocol,
                         nodePort: UInt16? = nil, endpoints: [String]) -> Service {
        Service(name: ServiceName(namespace: "default", name: name), clusterIPs: [IPAddress(clusterIP)!],
                ports: [ServicePort(name: "p", transport: transport, port: 53, nodePort: nodePort,
                                    endpoints: endpoints.map { Endpoint(address: IPAddress($0)!, port: 5353) })])
    }

    /// An entry of a client that sent to `destination`:`port` and got DNATed to `endpoint`.
    private func flow(_ transport: TransportProtocol, to destination: String, port: UInt16, endpoint: String,
                      sourcePort: UInt16 = 40000) -> ConntrackFlow {
        ConntrackFlow(transport: transport,
                      original: FlowTuple(source: client, destination: IPAddress(destination)!,
                                          sourcePort: sourcePort, destinationPort: port),
                      reply: FlowTuple(source: IPAddress(endpoint)!, destination: client,
                                       sourcePort: 5353, destinationPort: sourcePort),
                      status: [.destinationNAT, .confirmed])
    }

    func testStaleUDPEntriesGoAndEverythingElseStays() throws {
        let kernel = FakeKernel()
        let proxy = ServiceProxy(node: node, kernel: kernel)
        let dns = service("dns", clusterIP: "198.18.0.53", .udp, nodePort: 30053, endpoints: ["198.19.1.11", "198.19.1.12"])
        let web = service("web", clusterIP: "198.18.0.80", .tcp, endpoints: ["198.19.1.11", "198.19.1.12"])
        let gone = service("gone", clusterIP: "198.18.0.99", .udp, endpoints: ["198.19.1.21"])
        try proxy.apply(ServiceMap(services: [dns, web, gone]))

        let toRemovedEndpoint = flow(.udp, to: "198.18.0.53", port: 53, endpoint: "198.19.1.11")
        let nodePortToRemovedEndpoint = flow(.udp, to: "192.0.2.10", port: 30053, endpoint: "198.19.1.11", sourcePort: 40001)
        let toKeptEndpoint = flow(.udp, to: "198.18.0.53", port: 53, endpoint: "198.19.1.12", sourcePort: 40002)
        let tcpToRemovedEndpoint = flow(.tcp, to: "198.18.0.80", port: 53, endpoint: "198.19.1.11")
        let toRemovedClusterIP = flow(.udp, to: "198.18.0.99", port: 53, endpoint: "198.19.1.21")
        let unrelated = flow(.udp, to: "203.0.113.1", port: 53, endpoint: "198.19.1.11", sourcePort: 40003)
        kernel.flows = [toRemovedEndpoint, nodePortToRemovedEndpoint, toKeptEndpoint, tcpToRemovedEndpoint,
                        toRemovedClusterIP, unrelated]

        var dnsLosingOne = dns
        dnsLosingOne.ports[0].endpoints.removeFirst()
        var webLosingOne = web
        webLosingOne.ports[0].endpoints.removeFirst()
        let report = try proxy.apply(ServiceMap(services: [dnsLosingOne, webLosingOne]))
        XCTAssertTrue(report.incremental)
        XCTAssertEqual(report.flowsDeleted, 3)
        XCTAssertEqual(kernel.flows, [toKeptEndpoint, tcpToRemovedEndpoint, unrelated])
    }

    func testAFrontendGainingItsFirstEndpointLosesItsEntriesAfterARestartToo() throws {
        let kernel = FakeKernel()
        let empty = service("dns", clusterIP: "198.18.0.53", .udp, endpoints: [])
        try ServiceProxy(node: node, kernel: kernel).apply(ServiceMap(services: [empty]))
        // Made while the service had no endpoints (rejected, yet tracked).
        let early = flow(.udp, to: "198.18.0.53", port: 53, endpoint: "198.18.0.53")
        kernel.flows = [early]

        // A new process: full sync from what it reads back.
        let restarted = ServiceProxy(node: node, kernel: kernel)
        let report = try restarted.apply(ServiceMap(services: [service("dns", clusterIP: "198.18.0.53", .udp,
                                                                        endpoints: ["198.19.1.11"])]))
        XCTAssertEqual(report.path, .full(.firstApply))
        XCTAssertEqual(report.flowsDeleted, 1)
        XCTAssertEqual(kernel.flows, [])
    }

    func testNothingCommittedNothingDeleted() throws {
        let kernel = FakeKernel()
        let proxy = ServiceProxy(node: node, kernel: kernel)
        let map = ServiceMap(services: [service("dns", clusterIP: "198.18.0.53", .udp, endpoints: ["198.19.1.11"])])
        try proxy.apply(map)
        kernel.flows = [flow(.udp, to: "198.18.0.53", port: 53, endpoint: "198.19.1.11")]
        XCTAssertEqual(try proxy.apply(map).flowsDeleted, 0)
        XCTAssertEqual(try ServiceProxy(node: node, kernel: kernel).apply(map).flowsDeleted, 0)
        XCTAssertEqual(kernel.flows.count, 1)
    }
}
