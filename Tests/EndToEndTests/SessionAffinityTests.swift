import Foundation
import XCTest
import Sandbox

/// sessionAffinity ClientIP end to end: `nftproxy apply` programs node-1, and real
/// connections from pod-1 (to the ClusterIP) and the external client (to the NodePort)
/// show which pod answered. Endpoints are pod-2 and pod-3 (node-1) and pod-4 (node-2).
final class SessionAffinityTests: XCTestCase {
    override func setUpWithError() throws {
        EndToEndSuite.enroll(self)
        try requireRoot()
    }

    typealias Port = KubeYAML.Port
    private static let slicePorts: [(name: String, proto: String, port: UInt16)] = [("web", "TCP", 8080)]
    private static let nodeIPv4 = SandboxLayout.node1.lanIPv4

    /// A NodePort service; with `affinitySeconds`, sessionAffinity ClientIP with that timeout.
    private static func service(_ name: String, clusterIP: String, nodePort: UInt16, affinitySeconds: Int?) -> String {
        let yaml = KubeYAML.service(name, type: "NodePort", clusterIPs: [clusterIP],
                                    ports: [Port(name: "web", port: 80, targetPort: "8080", nodePort: nodePort)])
        guard let affinitySeconds else { return yaml }
        return yaml.replacingOccurrences(of: "spec:\n", with: """
            spec:
              sessionAffinity: ClientIP
              sessionAffinityConfig: {clientIP: {timeoutSeconds: \(affinitySeconds)}}

            """)
    }

    /// The pods that answered, in order; a failed attempt fails the test.
    private static func names(_ outcomes: [EchoOutcome], _ what: String,
                              file: StaticString = #filePath, line: UInt = #line) -> [String] {
        outcomes.compactMap { outcome in
            guard case .reply(let name, _) = outcome else {
                XCTFail("\(what): \(outcome)", file: file, line: line)
                return nil
            }
            return name
        }
    }

    /// Within the timeout every connection of one client reaches one pod, through the
    /// ClusterIP (pod-1) and the NodePort (the external client), while the same endpoints
    /// without affinity spread pod-1's connections over all three. When the remembered
    /// endpoint is removed, the client's next connection goes elsewhere (and sticks there).
    func testClientKeepsItsEndpointAndMovesWhenItIsRemoved() throws {
        try ServiceSandbox.run { s in
            let pod1 = s.pod(1), endpoints = [s.pod(2), s.pod(3), s.pod(4)]
            func objects(_ sticky: [Pod]) -> String {
                KubeYAML.stream([
                    Self.service("sticky", clusterIP: "198.18.1.60", nodePort: 32160, affinitySeconds: 600),
                    KubeYAML.endpointSlice("sticky-x1", service: "sticky", ports: Self.slicePorts, pods: sticky),
                    Self.service("plain", clusterIP: "198.18.1.61", nodePort: 32161, affinitySeconds: nil),
                    KubeYAML.endpointSlice("plain-x1", service: "plain", ports: Self.slicePorts, pods: endpoints),
                ])
            }
            try s.apply(objects(endpoints))
            let fromPod = Self.names(try s.request(from: pod1.host, to: "198.18.1.60", port: 80, count: 50), "pod-1 -> ClusterIP")
            XCTAssertEqual(fromPod.count, 50)
            XCTAssertEqual(Set(fromPod).count, 1, "pod-1 -> affinity ClusterIP: one endpoint for 50 connections, got \(tally(fromPod))")
            let fromClient = Self.names(try s.request(from: s.client, to: Self.nodeIPv4, port: 32160, count: 50),
                                        "client -> NodePort")
            XCTAssertEqual(Set(fromClient).count, 1, "client -> affinity NodePort: one endpoint for 50 connections, got \(tally(fromClient))")
            assertReplies(try s.request(from: pod1.host, to: "198.18.1.61", port: 80, count: 60),
                          from: ["pod-2": pod1.ipv4, "pod-3": pod1.ipv4, "pod-4": pod1.ipv4],
                          "pod-1 -> the same endpoints without affinity: spread")

            // Remove each client's endpoint: the next connection (after one dropped SYN) goes
            // to another endpoint, although the removed pod still runs and would answer.
            guard let kept = fromPod.first, let keptByClient = fromClient.first else { return }
            guard let keptIP = endpoints.first(where: { $0.name == kept })?.ipv4 else { return XCTFail("no pod \(kept)") }
            let entry = "\(pod1.ipv4) . 198.18.1.60 . tcp . 80"
            let remembered = try affinityEntries(s)
            XCTAssertTrue(remembered.contains { $0.contains(entry) && $0.contains(": \(keptIP) . 8080") },
                          "node-1 remembers pod-1 -> \(kept): \(remembered)")
            try s.apply(objects(endpoints.filter { $0.name != kept && $0.name != keptByClient }))
            // The apply leaves the packet path's entries alone: the release is the packet path's.
            let afterApply = try affinityEntries(s)
            XCTAssertTrue(afterApply.contains { $0.contains(entry) && $0.contains(": \(keptIP) . 8080") },
                          "the apply removed pod-1's entry: \(afterApply)")
            let moved = Self.names(try s.request(from: pod1.host, to: "198.18.1.60", port: 80, count: 10,
                                                 timeoutMilliseconds: 4000), "pod-1 -> ClusterIP after removal")
            XCTAssertFalse(moved.contains(kept), "pod-1 still reaches \(kept) after its removal: \(tally(moved))")
            XCTAssertEqual(Set(moved).count, 1, "pod-1 keeps its new endpoint: \(tally(moved))")
            let afterMove = try affinityEntries(s)
            XCTAssertFalse(afterMove.contains { $0.contains(entry) && $0.contains(": \(keptIP) . 8080") },
                           "pod-1's entry still names \(kept): \(afterMove)")
            let clientMoved = Self.names(try s.request(from: s.client, to: Self.nodeIPv4, port: 32160, count: 10,
                                                       timeoutMilliseconds: 4000), "client -> NodePort after removal")
            XCTAssertFalse(clientMoved.contains(keptByClient), "the client still reaches \(keptByClient): \(tally(clientMoved))")
            XCTAssertEqual(Set(clientMoved).count, 1, "the client keeps its new endpoint: \(tally(clientMoved))")
        }
    }

    /// With a timeout of 2 s, a client that waits longer than that between connections is
    /// balanced anew each time: over ten such rounds its connections reach more than one pod
    /// (all ten on one pod by chance: (1/3)^9), through the ClusterIP and the NodePort.
    func testAffinityEndsAfterTheTimeout() throws {
        try ServiceSandbox.run { s in
            let pod1 = s.pod(1)
            try s.apply(KubeYAML.stream([
                Self.service("brief", clusterIP: "198.18.1.62", nodePort: 32162, affinitySeconds: 2),
                KubeYAML.endpointSlice("brief-x1", service: "brief", ports: Self.slicePorts,
                                       pods: [s.pod(2), s.pod(3), s.pod(4)]),
            ]))
            let burst = Self.names(try s.request(from: pod1.host, to: "198.18.1.62", port: 80, count: 20), "burst")
            XCTAssertEqual(Set(burst).count, 1, "within the timeout: one endpoint, got \(tally(burst))")
            var viaClusterIP: [String] = [], viaNodePort: [String] = []
            for _ in 0..<10 {
                Thread.sleep(forTimeInterval: 2.6)
                viaClusterIP += Self.names(try s.request(from: pod1.host, to: "198.18.1.62", port: 80), "pod-1 -> ClusterIP")
                viaNodePort += Self.names(try s.request(from: s.client, to: Self.nodeIPv4, port: 32162), "client -> NodePort")
            }
            XCTAssertGreaterThan(Set(viaClusterIP).count, 1, "after each timeout pod-1 is balanced anew: \(tally(viaClusterIP))")
            XCTAssertGreaterThan(Set(viaNodePort).count, 1, "after each timeout the client is balanced anew: \(tally(viaNodePort))")
        }
    }
}

/// The elements of node-1's `affinity` map, one per line (`client . frontend . proto . port
/// expires … : endpoint . port`).
private func affinityEntries(_ s: ServiceSandbox) throws -> [String] {
    let listing = try s.node1.runChecked(["nft", "list", "map", "ip", "nftproxy", "affinity"]).stdout
    return listing.replacingOccurrences(of: "elements = {", with: "\n").split(whereSeparator: { $0 == "," || $0 == "\n" })
        .map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.contains(" : ") }
}

/// How many times each name occurs.
private func tally(_ names: [String]) -> [String: Int] {
    names.reduce(into: [:]) { $0[$1, default: 0] += 1 }
}
