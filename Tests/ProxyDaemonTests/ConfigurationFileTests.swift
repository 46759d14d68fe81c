import ProxyDaemon
import ServiceModel
import XCTest

/// A kube-proxy configuration file: honoured fields read, the others warned about one by
/// one, bad values refused naming the field.
final class ConfigurationFileTests: XCTestCase {
    func testHonouredFieldsAndOneWarningPerUnimplementedField() throws {
        let file = try KubeProxyConfigurationFile.parse("""
            apiVersion: kubeproxy.config.k8s.io/v1alpha1
            kind: KubeProxyConfiguration
            mode: nftables
            hostnameOverride: node-7
            bindAddress: 0.0.0.0
            healthzBindAddress: 0.0.0.0:10256
            metricsBindAddress: 127.0.0.1:10249
            clusterCIDR: 198.19.0.0/16,2001:db8:1::/48
            nodePortAddresses: [primary]
            clientConnection:
              kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
              qps: 50
            nftables:
              masqueradeAll: true
              masqueradeBit: 15
              syncPeriod: 1h0m0s
              minSyncPeriod: 250ms
            conntrack:
              maxPerCore: 32768
              udpTimeout: 0s
            iptables:
              masqueradeBit: null
            ipvs: {}
            """, source: "config.yaml")
        XCTAssertEqual(file.hostnameOverride, "node-7")
        XCTAssertEqual(file.clusterCIDR, "198.19.0.0/16,2001:db8:1::/48")
        XCTAssertEqual(file.nodePortAddresses, ["primary"])
        XCTAssertEqual(file.kubeconfig, "/var/lib/kube-proxy/kubeconfig.conf")
        XCTAssertEqual(file.masqueradeAll, true)
        XCTAssertEqual(file.masqueradeBit, 15)
        XCTAssertEqual(file.syncPeriod, .seconds(3600))
        XCTAssertEqual(file.minSyncPeriod, .milliseconds(250))
        XCTAssertEqual(file.warnings.compactMap(\.field).sorted(), ["clientConnection.qps", "conntrack.maxPerCore", "conntrack.udpTimeout"])
        XCTAssertEqual(Set(file.warnings.map(\.code)), [.unsupportedField])
        XCTAssertEqual(Set(file.warnings.map(\.object)), [DiagnosticObject(kind: "KubeProxyConfiguration", source: "config.yaml")])
    }

    func testBadFilesNameTheField() {
        func problem(_ text: String) -> String {
            do {
                _ = try KubeProxyConfigurationFile.parse(text, source: "c.yaml")
                return "accepted"
            } catch {
                return error.description
            }
        }
        XCTAssertEqual(problem("kind: Pod\napiVersion: v1"), #"c.yaml: kind: "Pod", expected KubeProxyConfiguration"#)
        XCTAssertEqual(problem("kind: KubeProxyConfiguration\napiVersion: v1"),
                       #"c.yaml: apiVersion: "v1", expected kubeproxy.config.k8s.io/v1alpha1"#)
        let header = "kind: KubeProxyConfiguration\napiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
        XCTAssertEqual(problem(header + "nftables: {syncPeriod: soon}"),
                       #"c.yaml: nftables.syncPeriod: "soon" is not a duration (such as 1s, 30s, 1h0m0s)"#)
        XCTAssertEqual(problem(header + "nftables: {masqueradeBit: x}"), #"c.yaml: nftables.masqueradeBit: "x" is not an integer"#)
        XCTAssertEqual(problem(header + "nodePortAddresses: primary"), "c.yaml: nodePortAddresses: expected a list of strings")
        XCTAssertEqual(problem(header + "mode: iptables").hasPrefix("accepted"), true)
    }

    func testGoDurations() {
        XCTAssertEqual(GoDuration.parse("1h0m0s"), .seconds(3600))
        XCTAssertEqual(GoDuration.parse("1m30s"), .seconds(90))
        XCTAssertEqual(GoDuration.parse("300ms"), .milliseconds(300))
        XCTAssertEqual(GoDuration.parse("1.5s"), .milliseconds(1500))
        XCTAssertEqual(GoDuration.parse("0"), .zero)
        for bad in ["", "s", "1", "-1s", "1x", "1h1"] { XCTAssertNil(GoDuration.parse(bad), bad) }
    }
}
