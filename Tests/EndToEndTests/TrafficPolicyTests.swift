import Foundation
import XCTest
import Sandbox

/// Traffic policies Local end to end: `nftproxy apply` programs node-1 (pods 1-3 run there,
/// pod-4 on node-2) and real connections from the external client, pods and node-1 show
/// which pod answered and which source it saw. One behaviour per test.
final class TrafficPolicyTests: XCTestCase {
    override func setUpWithError() throws {
        EndToEndSuite.enroll(self)
        try requireRoot()
    }

    typealias Port = KubeYAML.Port
    private static let web = [Port(name: "web", port: 80, targetPort: "8080")]
    private static let slicePorts: [(name: String, proto: String, port: UInt16)] = [("web", "TCP", 8080)]
    private static let clientIP = SandboxLayout.clientIPv4
    private static let nodeIPv4 = SandboxLayout.node1.lanIPv4

    /// A service as `KubeYAML.service` writes it, with the given traffic policies.
    private static func service(_ name: String, type: String = "ClusterIP", clusterIP: String, nodePort: UInt16? = nil,
                                loadBalancerIP: String? = nil, externalPolicy: String = "Cluster",
                                internalPolicy: String = "Cluster") -> String {
        let ports = [Port(name: "web", port: 80, targetPort: "8080", nodePort: nodePort)]
        return KubeYAML.service(name, type: type, clusterIPs: [clusterIP], ports: ports,
                                loadBalancerIngress: loadBalancerIP.map { [$0] } ?? [])
            .replacingOccurrences(of: "  externalTrafficPolicy: Cluster\n", with: "  externalTrafficPolicy: \(externalPolicy)\n")
            .replacingOccurrences(of: "spec:\n", with: "spec:\n  internalTrafficPolicy: \(internalPolicy)\n")
    }

    /// externalTrafficPolicy Local: the external client reaches only node-1's endpoint and it
    /// sees the client's own address, through the LB IP and the NodePort; a service whose
    /// only endpoint is on node-2 drops the client's traffic on node-1, while a pod (source
    /// kept) and node-1 itself (masqueraded to its LAN address) still reach that endpoint.
    func testExternalTrafficPolicyLocalKeepsTheClientAddressAndDropsWithoutLocalEndpoints() throws {
        try ServiceSandbox.run { s in
            let pod1 = s.pod(1), pod2 = s.pod(2), pod4 = s.pod(4)
            try s.apply(KubeYAML.stream([
                Self.service("local", type: "LoadBalancer", clusterIP: "198.18.1.10", nodePort: 32110,
                             loadBalancerIP: "203.0.113.110", externalPolicy: "Local"),
                KubeYAML.endpointSlice("local-x1", service: "local", ports: Self.slicePorts, pods: [pod2, pod4]),
                Self.service("remote", type: "LoadBalancer", clusterIP: "198.18.1.11", nodePort: 32111,
                             loadBalancerIP: "203.0.113.111", externalPolicy: "Local"),
                KubeYAML.endpointSlice("remote-x1", service: "remote", ports: Self.slicePorts, pods: [pod4]),
            ]))
            let onlyPod2 = Array(repeating: EchoOutcome.reply(name: "pod-2", peer: Self.clientIP), count: 30)
            XCTAssertEqual(try s.request(from: s.client, to: "203.0.113.110", port: 80, count: 30), onlyPod2,
                           "client -> LB IP of a Local service: node-1's endpoint only, client address kept")
            XCTAssertEqual(try s.request(from: s.client, to: Self.nodeIPv4, port: 32110, count: 30), onlyPod2,
                           "client -> NodePort of a Local service: node-1's endpoint only, client address kept")
            // Pods short-circuit to every endpoint, with their own address.
            assertReplies(try s.request(from: pod1.host, to: "203.0.113.110", port: 80, count: 60),
                          from: ["pod-2": pod1.ipv4, "pod-4": pod1.ipv4], "pod-1 -> LB IP of a Local service")

            XCTAssertEqual(try s.request(from: s.client, to: "203.0.113.111", port: 80, count: 3),
                           [.timeout, .timeout, .timeout], "client -> LB IP, no endpoint on node-1: dropped")
            XCTAssertEqual(try s.request(from: s.client, to: Self.nodeIPv4, port: 32111, count: 3),
                           [.timeout, .timeout, .timeout], "client -> NodePort, no endpoint on node-1: dropped")
            XCTAssertEqual(try s.request(from: pod1.host, to: "203.0.113.111", port: 80, count: 5),
                           Array(repeating: .reply(name: "pod-4", peer: pod1.ipv4), count: 5),
                           "pod-1 -> LB IP, no endpoint on node-1: short-circuit to pod-4")
            XCTAssertEqual(try s.request(from: pod1.host, to: Self.nodeIPv4, port: 32111, count: 5),
                           Array(repeating: .reply(name: "pod-4", peer: pod1.ipv4), count: 5),
                           "pod-1 -> NodePort, no endpoint on node-1: short-circuit to pod-4")
            XCTAssertEqual(try s.request(from: s.node1, to: "203.0.113.111", port: 80, count: 5),
                           Array(repeating: .reply(name: "pod-4", peer: Self.nodeIPv4), count: 5),
                           "node-1 -> LB IP, no endpoint on node-1: short-circuit to pod-4, masqueraded")
        }
    }

    /// internalTrafficPolicy Local: a pod and node-1 reach only node-1's endpoint of the
    /// ClusterIP; with no endpoint on node-1 the ClusterIP's traffic is dropped.
    func testInternalTrafficPolicyLocal() throws {
        try ServiceSandbox.run { s in
            let pod1 = s.pod(1), pod3 = s.pod(3), pod4 = s.pod(4)
            try s.apply(KubeYAML.stream([
                Self.service("node-local", clusterIP: "198.18.1.20", internalPolicy: "Local"),
                KubeYAML.endpointSlice("node-local-x1", service: "node-local", ports: Self.slicePorts, pods: [pod3, pod4]),
                Self.service("elsewhere", clusterIP: "198.18.1.21", internalPolicy: "Local"),
                KubeYAML.endpointSlice("elsewhere-x1", service: "elsewhere", ports: Self.slicePorts, pods: [pod4]),
            ]))
            XCTAssertEqual(try s.request(from: pod1.host, to: "198.18.1.20", port: 80, count: 30),
                           Array(repeating: .reply(name: "pod-3", peer: pod1.ipv4), count: 30),
                           "pod-1 -> ClusterIP with internalTrafficPolicy Local: node-1's endpoint only")
            XCTAssertEqual(try s.request(from: s.node1, to: "198.18.1.20", port: 80, count: 10),
                           Array(repeating: .reply(name: "pod-3", peer: ServiceSandbox.masqueradedIPv4), count: 10),
                           "node-1 -> ClusterIP with internalTrafficPolicy Local")
            XCTAssertEqual(try s.request(from: pod1.host, to: "198.18.1.21", port: 80, count: 3),
                           [.timeout, .timeout, .timeout], "pod-1 -> ClusterIP, no endpoint on node-1: dropped")
        }
    }

    /// Terminating endpoints are a fallback decided per list. A Local service whose node-1
    /// endpoint is terminating (still serving) while pod-4 is ready: external clients get the
    /// terminating local one (no black hole during a rolling update), pods the ready one.
    /// With both terminating, both lists fall back: pods reach both, the client node-1's.
    func testTerminatingFallbackIsDecidedForTheClusterAndTheLocalList() throws {
        try ServiceSandbox.run { s in
            let pod1 = s.pod(1), pod2 = s.pod(2), pod4 = s.pod(4)
            try s.apply(KubeYAML.stream([
                Self.service("rolling", type: "LoadBalancer", clusterIP: "198.18.1.30", loadBalancerIP: "203.0.113.130",
                             externalPolicy: "Local"),
                KubeYAML.endpointSlice("rolling-x1", service: "rolling", ports: Self.slicePorts, pods: [pod2, pod4],
                                       conditions: ["pod-2": .servingTerminating]),
                Self.service("draining", type: "LoadBalancer", clusterIP: "198.18.1.31", loadBalancerIP: "203.0.113.131",
                             externalPolicy: "Local"),
                KubeYAML.endpointSlice("draining-x1", service: "draining", ports: Self.slicePorts, pods: [pod2, pod4],
                                       conditions: ["pod-2": .servingTerminating, "pod-4": .servingTerminating]),
            ]))
            XCTAssertEqual(try s.request(from: s.client, to: "203.0.113.130", port: 80, count: 20),
                           Array(repeating: .reply(name: "pod-2", peer: Self.clientIP), count: 20),
                           "client -> Local LB IP: the local list falls back to its serving-terminating endpoint")
            XCTAssertEqual(try s.request(from: pod1.host, to: "203.0.113.130", port: 80, count: 20),
                           Array(repeating: .reply(name: "pod-4", peer: pod1.ipv4), count: 20),
                           "pod-1 -> the same LB IP: the cluster-wide list has a ready endpoint")
            XCTAssertEqual(try s.request(from: s.client, to: "203.0.113.131", port: 80, count: 20),
                           Array(repeating: .reply(name: "pod-2", peer: Self.clientIP), count: 20),
                           "client -> Local LB IP, all terminating: the local one")
            assertReplies(try s.request(from: pod1.host, to: "203.0.113.131", port: 80, count: 60),
                          from: ["pod-2": pod1.ipv4, "pod-4": pod1.ipv4],
                          "pod-1 -> LB IP, all terminating: the cluster-wide list falls back to both")
        }
    }

    /// Adds zone hints to the endpoints of `pods` in an EndpointSlice as `KubeYAML` writes it.
    private static func hinting(_ slice: String, _ hints: [(pod: Pod, zone: String)]) -> String {
        hints.reduce(slice) { yaml, hint in
            yaml.replacingOccurrences(of: "      - \(hint.pod.ipv4)\n",
                                      with: "      - \(hint.pod.ipv4)\n    hints: {forZones: [{name: \(hint.zone)}]}\n")
        }
    }

    /// Topology-aware routing with `--node-zone zone-a`: zone hints on every endpoint are
    /// followed (pod-2 and pod-3 for zone-a, pod-4 for zone-b: only pod-2 and pod-3 answer);
    /// hints on only some endpoints are ignored (all three answer); without --node-zone,
    /// complete hints are ignored too.
    func testZoneHintsAreFollowedWhenCompleteAndIgnoredWhenPartial() throws {
        try ServiceSandbox.run { s in
            let pod1 = s.pod(1), pod2 = s.pod(2), pod3 = s.pod(3), pod4 = s.pod(4)
            let objects = KubeYAML.stream([
                Self.service("zoned", clusterIP: "198.18.1.40"),
                Self.hinting(KubeYAML.endpointSlice("zoned-x1", service: "zoned", ports: Self.slicePorts, pods: [pod2, pod3, pod4]),
                             [(pod2, "zone-a"), (pod3, "zone-a"), (pod4, "zone-b")]),
                Self.service("partly", clusterIP: "198.18.1.41"),
                Self.hinting(KubeYAML.endpointSlice("partly-x1", service: "partly", ports: Self.slicePorts, pods: [pod2, pod3, pod4]),
                             [(pod2, "zone-a"), (pod4, "zone-b")]),
            ])
            XCTAssertNotEqual(objects.components(separatedBy: "hints:").count, 1, "no hint was written")
            try s.apply(objects, options: ServiceSandbox.nodeOptions + ["--node-zone", "zone-a"])
            assertReplies(try s.request(from: pod1.host, to: "198.18.1.40", port: 80, count: 40),
                          from: ["pod-2": pod1.ipv4, "pod-3": pod1.ipv4], "complete zone hints, node in zone-a")
            assertReplies(try s.request(from: pod1.host, to: "198.18.1.41", port: 80, count: 60),
                          from: ["pod-2": pod1.ipv4, "pod-3": pod1.ipv4, "pod-4": pod1.ipv4], "partial zone hints: ignored")
            try s.apply(objects)
            assertReplies(try s.request(from: pod1.host, to: "198.18.1.40", port: 80, count: 60),
                          from: ["pod-2": pod1.ipv4, "pod-3": pod1.ipv4, "pod-4": pod1.ipv4], "no --node-zone: hints ignored")
        }
    }

    /// loadBalancerSourceRanges: the client (192.0.2.100) reaches the LB IP of a service
    /// whose ranges hold it, and is dropped at the LB IP of one whose ranges do not, while
    /// that service's NodePort still answers it (NodePorts are not filtered, as upstream).
    func testLoadBalancerSourceRangesAllowAndBlock() throws {
        try ServiceSandbox.run { s in
            let pod2 = s.pod(2)
            func ranged(_ name: String, clusterIP: String, nodePort: UInt16, ip: String, ranges: String) -> String {
                Self.service(name, type: "LoadBalancer", clusterIP: clusterIP, nodePort: nodePort, loadBalancerIP: ip)
                    .replacingOccurrences(of: "spec:\n", with: "spec:\n  loadBalancerSourceRanges: [\(ranges)]\n")
            }
            try s.apply(KubeYAML.stream([
                ranged("allowed", clusterIP: "198.18.1.50", nodePort: 32150, ip: "203.0.113.150", ranges: "198.51.100.0/24, 192.0.2.96/28"),
                KubeYAML.endpointSlice("allowed-x1", service: "allowed", ports: Self.slicePorts, pods: [pod2]),
                ranged("blocked", clusterIP: "198.18.1.51", nodePort: 32151, ip: "203.0.113.151", ranges: "198.51.100.0/24"),
                KubeYAML.endpointSlice("blocked-x1", service: "blocked", ports: Self.slicePorts, pods: [pod2]),
            ]))
            let masqueraded = ServiceSandbox.masqueradedIPv4
            XCTAssertEqual(try s.request(from: s.client, to: "203.0.113.150", port: 80, count: 5),
                           Array(repeating: .reply(name: "pod-2", peer: masqueraded), count: 5),
                           "client in 192.0.2.96/28 -> LB IP: allowed")
            XCTAssertEqual(try s.request(from: s.client, to: "203.0.113.151", port: 80, count: 3),
                           [.timeout, .timeout, .timeout], "client outside 198.51.100.0/24 -> LB IP: dropped")
            XCTAssertEqual(try s.request(from: s.client, to: Self.nodeIPv4, port: 32151, count: 5),
                           Array(repeating: .reply(name: "pod-2", peer: masqueraded), count: 5),
                           "client -> NodePort of the same service: not filtered")
        }
    }
}
