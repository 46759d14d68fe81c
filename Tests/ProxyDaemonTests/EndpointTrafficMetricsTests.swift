import ProxyCompiler
import ProxyDaemon
import ServiceModel
import XCTest

/// The text of `nftproxy_endpoint_connections_total` (the kernel read is checked end to end).
final class EndpointTrafficMetricsTests: XCTestCase {
    func testOneSamplePerEndpointWithFrontendKindAndEndpointLabels() {
        let key = ProgrammedFrontend.Key(family: .v6, address: IPAddress("2001:db8::10"), transport: .tcp, port: 80)
        let text = EndpointTrafficMetrics.text([
            FrontendTraffic(key: key, kind: .clusterIP, endpoints: [
                EndpointCount(address: "2001:db8:1::5", port: 8080, connections: 7),
                EndpointCount(address: "2001:db8:1::6", port: 8080, connections: 0),
            ]),
        ])
        XCTAssertEqual(text, """
            # HELP nftproxy_endpoint_connections_total New connections the kernel balanced to each endpoint of a frontend.
            # TYPE nftproxy_endpoint_connections_total counter
            nftproxy_endpoint_connections_total{frontend="[2001:db8::10]:80/tcp",kind="clusterIP",endpoint="[2001:db8:1::5]:8080"} 7
            nftproxy_endpoint_connections_total{frontend="[2001:db8::10]:80/tcp",kind="clusterIP",endpoint="[2001:db8:1::6]:8080"} 0

            """)
    }
}
