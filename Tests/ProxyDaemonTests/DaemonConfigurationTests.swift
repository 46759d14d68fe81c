import ProxyDaemon
import ServiceModel
import XCTest

/// Flags win over the configuration file, which wins over the defaults; the node name
/// comes from the flag, NODE_NAME, the host name override, the host name, in that order.
final class DaemonConfigurationTests: XCTestCase {
    private func file(_ body: String) throws -> KubeProxyConfigurationFile {
        try KubeProxyConfigurationFile.parse("kind: KubeProxyConfiguration\napiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
                                             + body, source: "c.yaml")
    }

    func testDefaults() throws {
        let (config, warnings) = try DaemonConfiguration.resolve(flags: DaemonFlags(), file: nil, environment: [:],
                                                                 hostname: "Worker-3")
        XCTAssertEqual(config.nodeName, "worker-3")
        XCTAssertEqual(config.nodePortAddresses, [.primary])
        XCTAssertEqual(config.sync, SyncSettings(minSyncPeriod: .seconds(1), syncPeriod: .seconds(3600)))
        XCTAssertEqual(config.healthzBindAddress?.description, "0.0.0.0:10256")
        XCTAssertEqual(config.metricsBindAddress?.description, "127.0.0.1:10249")
        XCTAssertEqual(config.masqueradeBit, 14)
        XCTAssertTrue(config.nodeConfig(nodeIPs: []).endpointCounters, "endpoint counters are on by default")
        XCTAssertTrue(warnings.isEmpty)
    }

    func testEndpointCountersFlagReachesTheNodeConfig() throws {
        var flags = DaemonFlags()
        flags.endpointCounters = false
        let (config, _) = try DaemonConfiguration.resolve(flags: flags, file: nil, environment: [:], hostname: "h")
        XCTAssertFalse(config.nodeConfig(nodeIPs: []).endpointCounters)
    }

    func testFlagsWinOverTheFileWhichWinsOverDefaults() throws {
        let config = try file("""
            hostnameOverride: from-file
            clusterCIDR: 198.19.0.0/16,2001:db8:1::/48
            metricsBindAddress: 0.0.0.0:10249
            nftables: {masqueradeBit: 15, minSyncPeriod: 2s, syncPeriod: 30m}
            """)
        var flags = DaemonFlags()
        flags.minSyncPeriod = "0s"
        flags.masqueradeBit = 13
        flags.healthzBindAddress = "127.0.0.1:0"
        let (resolved, _) = try DaemonConfiguration.resolve(flags: flags, file: config, environment: [:], hostname: "h")
        XCTAssertEqual(resolved.nodeName, "from-file")
        XCTAssertEqual(resolved.clusterCIDRs, [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])
        XCTAssertEqual(resolved.masqueradeBit, 13)
        XCTAssertEqual(resolved.sync.minSyncPeriod, .zero)
        XCTAssertEqual(resolved.sync.syncPeriod, .seconds(1800))
        XCTAssertNil(resolved.healthzBindAddress, "port 0 turns the server off")
        XCTAssertEqual(resolved.metricsBindAddress?.description, "0.0.0.0:10249")

        let (fromEnvironment, _) = try DaemonConfiguration.resolve(flags: DaemonFlags(), file: config,
                                                                   environment: ["NODE_NAME": "node-9"], hostname: "h")
        XCTAssertEqual(fromEnvironment.nodeName, "node-9")
    }

    func testPrimaryNodePortAddressesFollowTheNodeIPs() throws {
        var flags = DaemonFlags()
        flags.nodePortAddresses = ["primary", "203.0.113.0/24"]
        let (config, _) = try DaemonConfiguration.resolve(flags: flags, file: nil, environment: [:], hostname: "h")
        let node = config.nodeConfig(nodeIPs: [IPAddress("192.0.2.10")!])
        XCTAssertEqual(node.nodePortAddresses, [CIDR("192.0.2.10/32")!, CIDR("203.0.113.0/24")!])
    }

    func testBadValuesAreRefusedNamingTheOption() {
        func problem(_ change: (inout DaemonFlags) -> Void) -> String {
            var flags = DaemonFlags()
            change(&flags)
            do {
                _ = try DaemonConfiguration.resolve(flags: flags, file: nil, environment: [:], hostname: "h")
                return "accepted"
            } catch {
                return error.description
            }
        }
        XCTAssertEqual(problem { $0.nodeIPs = ["192.0.2.300"] }, "--node-ip: 192.0.2.300 is not an IP address")
        XCTAssertEqual(problem { $0.clusterCIDRs = ["198.19.0.0"] }, "cluster CIDR: 198.19.0.0 is not a CIDR")
        XCTAssertEqual(problem { $0.nodePortAddresses = ["all"] }, "--nodeport-addresses: all is neither a CIDR nor primary")
        XCTAssertEqual(problem { $0.syncPeriod = "hourly" }, "--sync-period: hourly is not a duration (such as 1s, 30s, 1h0m0s)")
        XCTAssertEqual(problem { $0.healthzBindAddress = "10256" }, "--healthz-bind-address: 10256 has no port (host:port)")
        XCTAssertEqual(problem { $0.metricsBindAddress = "localhost:10249" }, "--metrics-bind-address: localhost is not an IP address")
        XCTAssertEqual(problem { $0.masqueradeBit = 40 }, "masquerade bit: 40 is not a bit number (0-31)")
    }
}
