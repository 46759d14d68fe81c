import Foundation
import XCTest
import Sandbox

/// `nftproxy explain` agrees with real traffic: for each kind of traffic the service tests
/// send (pod, node and outside sources; ClusterIP, NodePort, externalIP, LB IP; TCP, UDP,
/// IPv6; no endpoints; an undefined port; a non-service port), the verdict of `explain`
/// over the tables read back from node-1's kernel must match what the connections did:
/// which pods answered, which source each saw, or that the connection was refused.
final class ExplainTests: XCTestCase {
    override func setUpWithError() throws {
        EndToEndSuite.enroll(self)
        try requireRoot()
    }

    /// One kind of traffic: a host sends `attempts` connections.
    private struct Case {
        var name: String
        var host: (ServiceSandbox) -> Sandbox.Host
        var source: (ServiceSandbox) -> String
        var origin: String
        var destination: String
        var port: UInt16
        var proto: EchoProtocol = .tcp
    }

    private typealias T = ServiceTests

    private let cases: [Case] = [
        Case(name: "client -> NodePort", host: { $0.client }, source: { _ in SandboxLayout.clientIPv4 },
             origin: "--from-outside", destination: T.nodeIPv4, port: 32000),
        Case(name: "client -> NodePort with an endpoint on node-2", host: { $0.client },
             source: { _ in SandboxLayout.clientIPv4 }, origin: "--from-outside", destination: T.nodeIPv4, port: 32020),
        Case(name: "pod -> ClusterIP", host: { $0.pod(1).host }, source: { $0.pod(1).ipv4 },
             origin: "--from-pod", destination: T.backendIP, port: 80),
        Case(name: "pod -> ClusterIP it is an endpoint of", host: { $0.pod(2).host }, source: { $0.pod(2).ipv4 },
             origin: "--from-pod", destination: T.dualIPv4, port: 80),
        Case(name: "node -> ClusterIP", host: { $0.node1 }, source: { _ in T.nodeIPv4 },
             origin: "--from-node", destination: T.backendIP, port: 80),
        Case(name: "pod -> its own service (hairpin, UDP)", host: { $0.pod(1).host }, source: { $0.pod(1).ipv4 },
             origin: "--from-pod", destination: T.hairpinIP, port: 80, proto: .udp),
        Case(name: "client -> externalIP", host: { $0.client }, source: { _ in SandboxLayout.clientIPv4 },
             origin: "--from-outside", destination: T.externalIP, port: 80),
        Case(name: "client -> LB IP", host: { $0.client }, source: { _ in SandboxLayout.clientIPv4 },
             origin: "--from-outside", destination: T.loadBalancerIP, port: 80),
        Case(name: "pod -> UDP ClusterIP", host: { $0.pod(1).host }, source: { $0.pod(1).ipv4 },
             origin: "--from-pod", destination: T.dnsIP, port: 53, proto: .udp),
        Case(name: "client -> UDP NodePort", host: { $0.client }, source: { _ in SandboxLayout.clientIPv4 },
             origin: "--from-outside", destination: T.nodeIPv4, port: 32053, proto: .udp),
        Case(name: "pod -> IPv6 ClusterIP", host: { $0.pod(1).host }, source: { $0.pod(1).ipv6 },
             origin: "--from-pod", destination: T.dualIPv6, port: 80),
        Case(name: "node -> IPv6 ClusterIP", host: { $0.node1 }, source: { _ in T.nodeIPv6 },
             origin: "--from-node", destination: T.dualIPv6, port: 80),
        Case(name: "client -> IPv6 NodePort", host: { $0.client }, source: { _ in SandboxLayout.clientIPv6 },
             origin: "--from-outside", destination: T.nodeIPv6, port: 32060),
        Case(name: "pod -> ClusterIP without endpoints", host: { $0.pod(1).host }, source: { $0.pod(1).ipv4 },
             origin: "--from-pod", destination: T.emptyIP, port: 80),
        Case(name: "client -> NodePort without endpoints", host: { $0.client }, source: { _ in SandboxLayout.clientIPv4 },
             origin: "--from-outside", destination: T.nodeIPv4, port: 32040),
        Case(name: "client -> UDP NodePort without endpoints", host: { $0.client },
             source: { _ in SandboxLayout.clientIPv4 }, origin: "--from-outside", destination: T.nodeIPv4, port: 32041,
             proto: .udp),
        Case(name: "pod -> ClusterIP on an undefined port", host: { $0.pod(1).host }, source: { $0.pod(1).ipv4 },
             origin: "--from-pod", destination: T.echoServerIP, port: 81),
        Case(name: "pod -> UDP to a TCP-only ClusterIP port", host: { $0.pod(1).host }, source: { $0.pod(1).ipv4 },
             origin: "--from-pod", destination: T.echoServerIP, port: 80, proto: .udp),
        Case(name: "client -> the node's port 80 (not a service)", host: { $0.client },
             source: { _ in SandboxLayout.clientIPv4 }, origin: "--from-outside", destination: T.nodeIPv4, port: 80),
    ]

    /// The pod that owns an endpoint address, and the source it sees when node-1 masquerades
    /// traffic to it: cbr0's address for node-1's pods, the LAN address for pod-4.
    private func pod(at address: String) -> (name: String, masqueraded: String)? {
        guard let pod = SandboxLayout.pods.first(where: { $0.ipv4 == address || $0.ipv6 == address }) else { return nil }
        let six = pod.ipv6 == address
        if pod.node == SandboxLayout.node1.name { return (pod.name, six ? T.masq6 : T.masq4) }
        return (pod.name, six ? T.nodeIPv6 : T.nodeIPv4)
    }

    func testExplainAgreesWithTraffic() throws {
        try ServiceSandbox.run { s in
            let objects = ServiceTests.objects(s)
            try s.apply(objects)
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("explain-\(s.topology.prefix).yaml")
            try objects.write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }

            for test in cases {
                let source = test.source(s)
                let arguments = ["explain", "--from", source,
                                 "--to", test.destination.contains(":") ? "[\(test.destination)]:\(test.port)"
                                    : "\(test.destination):\(test.port)",
                                 "--protocol", test.proto == .udp ? "udp" : "tcp", test.origin, "-o", "json"]
                    + ServiceSandbox.nodeOptions
                let fromKernel = try CommandRunner().runChecked(
                    [s.nftproxy] + arguments + ["--kernel", "--netns", s.node1.namespace], timeout: .seconds(30))
                let compiled = try CommandRunner().runChecked([s.nftproxy] + arguments + ["-f", file.path],
                                                              timeout: .seconds(30))
                let verdict = try Verdict(json: fromKernel.stdout)
                XCTAssertEqual(verdict, try Verdict(json: compiled.stdout),
                               "\(test.name): explain of the kernel's tables and of the compiled objects differ")

                // Enough attempts to reach every endpoint of a 3-way balance: a miss has
                // probability 3·(2/3)^40 ≈ 3e-7.
                let outcomes = try s.request(from: test.host(s), test.proto, to: test.destination, port: test.port,
                                             count: verdict.kind == "balanced" ? 40 : 3)
                switch verdict.kind {
                case "balanced":
                    var expected: [String: String] = [:]
                    for endpoint in verdict.endpoints {
                        guard let pod = pod(at: endpoint.address) else {
                            XCTFail("\(test.name): explain names \(endpoint.address), which is no pod")
                            continue
                        }
                        expected[pod.name] = endpoint.masquerade == nil ? source : pod.masqueraded
                    }
                    assertReplies(outcomes, from: expected, "\(test.name) (explain: \(verdict))")
                case "rejected":
                    XCTAssertEqual(outcomes, Array(repeating: .refused, count: outcomes.count),
                                   "\(test.name): explain says rejected (\(verdict))")
                case "untouched":
                    XCTAssertFalse(outcomes.contains { $0.name != nil }, "\(test.name): explain says untouched, yet a pod answered: \(outcomes)")
                default:
                    XCTFail("\(test.name): unexpected verdict \(verdict)")
                }
            }
        }
    }

    /// The parts of explain's JSON that traffic can confirm.
    private struct Verdict: Equatable, CustomStringConvertible {
        struct Endpoint: Equatable { var address: String, port: Int, probability: Double, masquerade: String? }
        var kind: String
        var reason: String?
        var endpoints: [Endpoint]

        init(json: String) throws {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], json)
            kind = try XCTUnwrap(object["verdict"] as? String, json)
            reason = object["reason"] as? String
            endpoints = (object["endpoints"] as? [[String: Any]] ?? []).map {
                Endpoint(address: $0["address"] as? String ?? "", port: $0["port"] as? Int ?? 0,
                         probability: $0["probability"] as? Double ?? 0, masquerade: $0["masquerade"] as? String)
            }
        }

        var description: String {
            "\(kind)\(reason.map { " (\($0))" } ?? "") "
                + endpoints.map { "\($0.address):\($0.port) p=\(String(format: "%.2f", $0.probability))\($0.masquerade.map { " masq \($0)" } ?? "")" }
                .joined(separator: ", ")
        }
    }
}
