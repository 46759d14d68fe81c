import XCTest
import Conntrack
import ProxyCompiler
import ProxyEngine
import ServiceModel

final class StaleFlowsTests: XCTestCase {
    private let ip = { (text: String) in IPAddress(text)! }

    private func dns(_ endpoints: [String], transport: TransportProtocol = .udp) -> ServiceMap {
        ServiceMap(services: [Service(
            name: ServiceName(namespace: "kube-system", name: "dns"), clusterIPs: [ip("198.18.0.53")],
            ports: [ServicePort(name: "dns", transport: transport, port: 53, nodePort: 30053,
                                endpoints: endpoints.map { Endpoint(address: ip($0), port: 5353) })])])
    }

    private func filters(_ before: ServiceMap?, _ after: ServiceMap) -> [ConntrackFilter] {
        let compiler = Compiler(node: NodeConfig(clusterCIDRs: [CIDR("198.19.0.0/16")!]))
        return StaleFlows.filters(from: before.map { compiler.compile($0).ruleset }, to: compiler.compile(after).ruleset)
    }

    func testRemovedUDPEndpointLosesItsFlowsOnClusterIPAndNodePort() {
        XCTAssertEqual(filters(dns(["198.19.1.11", "198.19.1.12"]), dns(["198.19.1.12"])), [
            ConntrackFilter(family: .v4, transport: .udp, originalDestination: nil, originalDestinationPort: 30053,
                            replySource: ip("198.19.1.11"), replySourcePort: 5353, requireDestinationNAT: true),
            ConntrackFilter(family: .v4, transport: .udp, originalDestination: ip("198.18.0.53"), originalDestinationPort: 53,
                            replySource: ip("198.19.1.11"), replySourcePort: 5353, requireDestinationNAT: false),
        ])
    }

    func testServiceGainingEndpointsOrDisappearingLosesAllItsFlows() {
        let whole = [
            ConntrackFilter(family: .v4, transport: .udp, originalDestination: nil, originalDestinationPort: 30053,
                            replySource: nil, replySourcePort: nil, requireDestinationNAT: true),
            ConntrackFilter(family: .v4, transport: .udp, originalDestination: ip("198.18.0.53"), originalDestinationPort: 53,
                            replySource: nil, replySourcePort: nil, requireDestinationNAT: false),
        ]
        XCTAssertEqual(filters(dns([]), dns(["198.19.1.11"])), whole)
        XCTAssertEqual(filters(nil, dns(["198.19.1.11"])), whole, "after a restart into an empty kernel")
        XCTAssertEqual(filters(dns(["198.19.1.11"]), ServiceMap(services: [])), whole)
    }

    func testUnchangedUDPAndAnyTCPChangeKeepTheirFlows() {
        XCTAssertEqual(filters(dns(["198.19.1.11"]), dns(["198.19.1.11"])), [])
        XCTAssertEqual(filters(dns(["198.19.1.11", "198.19.1.12"], transport: .tcp), dns(["198.19.1.12"], transport: .tcp)), [])
        XCTAssertEqual(filters(dns(["198.19.1.11"]), dns(["198.19.1.11", "198.19.1.12"])), [], "an added endpoint strands nobody")
    }
}
