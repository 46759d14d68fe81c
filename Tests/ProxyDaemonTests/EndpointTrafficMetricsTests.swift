import ProxyCompiler
import ProxyDaemon
import ServiceModel
import XCTest

/// The text of the endpoint traffic metrics (the kernel read is checked end to end).
final class EndpointTrafficMetricsTests: XCTestCase {
    private let web = ServiceName(namespace: "shop", name: "web")

    private func frontend(_ address: String, kind: ProgrammedFrontend.Kind, port: UInt16,
                          _ endpoints: [EndpointCount]) -> FrontendTraffic {
        FrontendTraffic(key: ProgrammedFrontend.Key(family: .v6, address: kind == .nodePort ? nil : IPAddress(address),
                                                    transport: .tcp, port: port),
                        kind: kind, endpoints: endpoints)
    }

    private func endpoint(_ address: String, _ connections: UInt64, portName: String = "", node: String? = "node-2",
                          local: Bool = false, open: UInt64? = nil) -> EndpointCount {
        EndpointCount(address: address, port: 8080, connections: connections, packets: connections * 10,
                      bytes: connections * 1000,
                      names: EndpointNames(service: web, portName: portName, node: node, local: local), open: open)
    }

    func testOneSamplePerEndpointOfAServicePortSummedOverItsFrontends() {
        let groups = ServicePortTraffic.group([
            frontend("2001:db8::10", kind: .clusterIP, port: 80,
                     [endpoint("2001:db8:1::5", 7, local: true, open: 2), endpoint("2001:db8:1::6", 0, node: nil, open: 0)]),
            frontend("", kind: .nodePort, port: 30080,
                     [endpoint("2001:db8:1::5", 2, local: true, open: 1), endpoint("2001:db8:1::6", 1, node: nil, open: 0)]),
        ])
        XCTAssertEqual(groups.count, 1, "one port, two frontends")
        let (text, dropped) = EndpointTrafficMetrics.text(groups)
        XCTAssertEqual(dropped, 0)
        let five = #"{namespace="shop",service="web",port="80",endpoint="[2001:db8:1::5]:8080",node="node-2",local="true"}"#
        let six = #"{namespace="shop",service="web",port="80",endpoint="[2001:db8:1::6]:8080",node="",local="false"}"#
        XCTAssertEqual(text, """
            # HELP nftproxy_endpoint_connections_total New connections the kernel balanced to each endpoint of a service port.
            # TYPE nftproxy_endpoint_connections_total counter
            nftproxy_endpoint_connections_total\(five) 9
            nftproxy_endpoint_connections_total\(six) 1
            # HELP nftproxy_endpoint_packets_total Packets of the flows balanced to each endpoint, both directions.
            # TYPE nftproxy_endpoint_packets_total counter
            nftproxy_endpoint_packets_total\(five) 90
            nftproxy_endpoint_packets_total\(six) 10
            # HELP nftproxy_endpoint_bytes_total Bytes of the flows balanced to each endpoint, both directions.
            # TYPE nftproxy_endpoint_bytes_total counter
            nftproxy_endpoint_bytes_total\(five) 9000
            nftproxy_endpoint_bytes_total\(six) 1000
            # HELP nftproxy_endpoint_open_connections Connections to each endpoint that conntrack holds open now.
            # TYPE nftproxy_endpoint_open_connections gauge
            nftproxy_endpoint_open_connections\(five) 3
            nftproxy_endpoint_open_connections\(six) 0
            # HELP nftproxy_endpoint_metrics_dropped Endpoints left out of the endpoint metrics by --endpoint-metrics-limit.
            # TYPE nftproxy_endpoint_metrics_dropped gauge
            nftproxy_endpoint_metrics_dropped 0

            """)
    }

    /// Counters are written in full, up to the largest a 64-bit counter holds.
    func testLargeCountsAreWrittenInFull() {
        var large = endpoint("2001:db8:1::5", 1_234_567_890)
        large.bytes = UInt64.max
        let (text, _) = EndpointTrafficMetrics.text(ServicePortTraffic.group([frontend("2001:db8::10", kind: .clusterIP,
                                                                                       port: 80, [large])]))
        XCTAssertTrue(text.contains("} 1234567890\n"), text)
        XCTAssertTrue(text.contains("} 12345678900\n"), text)
        XCTAssertTrue(text.contains("} 18446744073709551615\n"), text)
    }

    func testTheLimitKeepsTheFirstEndpointsAndCountsTheRest() {
        let groups = ServicePortTraffic.group([
            frontend("2001:db8::10", kind: .clusterIP, port: 80,
                     (1...5).map { endpoint("2001:db8:1::\($0)", UInt64($0), portName: "http") }),
        ])
        let (text, dropped) = EndpointTrafficMetrics.text(groups, limit: 3)
        XCTAssertEqual(dropped, 2)
        XCTAssertEqual(text.split(separator: "\n").filter { $0.hasPrefix("nftproxy_endpoint_connections_total{") }.count, 3)
        XCTAssertTrue(text.contains(#"port="http""#), text)
        XCTAssertTrue(text.hasSuffix("nftproxy_endpoint_metrics_dropped 2\n"), text)
        XCTAssertEqual(EndpointTrafficMetrics.text(groups, limit: 0).dropped, 0, "0: no limit")
    }
}
