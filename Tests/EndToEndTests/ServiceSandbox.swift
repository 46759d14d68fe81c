import Foundation
import XCTest
import Sandbox

/// A sandbox topology with an echo server in every pod and `nftproxy` programming node-1.
///
/// Every pod runs `nftproxy-echo serve` on TCP and UDP ports 8080 and 5353, answering with
/// its pod name and the peer address it saw. `apply` writes Kubernetes objects to a file
/// and runs the built `nftproxy apply -f FILE --netns <node-1>` with the node options of
/// this topology, exactly as an operator would.
final class ServiceSandbox {
    /// The node options every apply uses unless told otherwise: node-1, both pod ranges.
    static let nodeOptions = [
        "--node-name", SandboxLayout.node1.name,
        "--node-ip", SandboxLayout.node1.lanIPv4, "--node-ip", SandboxLayout.node1.lanIPv6,
        "--cluster-cidr", SandboxLayout.clusterIPv4CIDR, "--cluster-cidr", SandboxLayout.clusterIPv6CIDR,
    ]
    /// Ports every pod's echo server listens on (TCP and UDP).
    static let echoPorts: [UInt16] = [8080, 5353]

    let topology: Topology
    let echo: EchoClient
    let nftproxy: String
    private let directory: URL

    var client: Sandbox.Host { topology.client }
    var node1: Sandbox.Host { topology.node1 }
    var pods: [Pod] { topology.pods }
    func pod(_ number: Int) -> Pod { topology.pods[number - 1] }

    /// node-1's address on the pod bridge: the source of masqueraded traffic to its pods.
    static let masqueradedIPv4 = SandboxLayout.node1.bridgeIPv4
    static let masqueradedIPv6 = SandboxLayout.node1.bridgeIPv6

    private init(topology: Topology, echoBinary: String, nftproxy: String) throws {
        self.topology = topology
        self.echo = EchoClient(binary: echoBinary)
        self.nftproxy = nftproxy
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nftproxy-e2e-\(topology.prefix)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// Creates the topology and starts the echo servers, runs `body`, and always tears
    /// everything down, asserting that nothing is left (see `withTopology`).
    static func run(file: StaticString = #filePath, line: UInt = #line, _ body: (ServiceSandbox) throws -> Void) throws {
        let echoBinary = try BuiltProducts.path(of: "nftproxy-echo")
        let nftproxy = try BuiltProducts.path(of: "nftproxy")
        try withTopology({ topology in
            let sandbox = try ServiceSandbox(topology: topology, echoBinary: echoBinary, nftproxy: nftproxy)
            defer { try? FileManager.default.removeItem(at: sandbox.directory) }
            try topology.startEchoServers(echoBinary: echoBinary, ports: echoPorts, protocols: [.tcp, .udp])
            try body(sandbox)
        }, file: file, line: line)
    }

    /// `nftproxy apply -f <objects> --netns <node-1> <options>`; throws unless it succeeds.
    @discardableResult
    func apply(_ objects: String, options: [String] = ServiceSandbox.nodeOptions) throws -> CommandResult {
        let file = directory.appendingPathComponent("objects-\(UUID().uuidString.prefix(8)).yaml")
        try objects.write(to: file, atomically: true, encoding: .utf8)
        return try CommandRunner().runChecked([nftproxy, "apply", "-f", file.path, "--netns", node1.namespace] + options,
                                              timeout: .seconds(30))
    }

    /// `nftproxy cleanup --netns <node-1>`; throws unless it succeeds.
    @discardableResult
    func cleanup() throws -> CommandResult {
        try CommandRunner().runChecked([nftproxy, "cleanup", "--netns", node1.namespace], timeout: .seconds(30))
    }

    /// `count` attempts from `host`, each with its own timeout (1 s by default).
    func request(from host: Sandbox.Host, _ proto: EchoProtocol = .tcp, to address: String, port: UInt16,
                 count: Int = 1, timeoutMilliseconds: Int = 1000) throws -> [EchoOutcome] {
        try echo.request(from: host, proto, to: address, port: port, count: count, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// nftproxy's tables in node-1, as `nft list tables` prints them.
    func nodeTables() throws -> [String] {
        try node1.runChecked(["nft", "list", "tables"]).lines
    }
}

// MARK: - Assertions

/// Asserts that every outcome is a reply from one of `expected`'s pods and that the pod saw
/// the source address `expected` gives for it; with `reachingAll`, also that every pod in
/// `expected` answered at least once.
///
/// `reachingAll` is a statement about chance: with k equally likely endpoints and n
/// attempts, some endpoint is missed with probability at most k·(1 − 1/k)^n. The tests use
/// n = 60 with k ≤ 3, a bound of 3·(2/3)^60 ≈ 8e-11.
func assertReplies(_ outcomes: [EchoOutcome], from expected: [String: String], reachingAll: Bool = true,
                   _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    var seen: [String: Int] = [:]
    var wrong: [String] = []
    for outcome in outcomes {
        guard case .reply(let name, let peer) = outcome, let source = expected[name] else {
            wrong.append(outcome.description)
            continue
        }
        if peer != source { wrong.append("\(name) saw \(peer), expected \(source)") }
        seen[name, default: 0] += 1
    }
    XCTAssertTrue(wrong.isEmpty, "\(what): \(wrong.count) of \(outcomes.count) outcomes unexpected, e.g. \(Array(Set(wrong)).sorted().prefix(5)); "
                  + "expected replies from \(expected.sorted { $0.key < $1.key })", file: file, line: line)
    if reachingAll {
        let missing = expected.keys.filter { seen[$0] == nil }.sorted()
        XCTAssertTrue(missing.isEmpty, "\(what): \(missing) never answered in \(outcomes.count) attempts (tally \(seen.sorted { $0.key < $1.key }))",
                      file: file, line: line)
    }
}

/// Replies per pod name.
func tally(_ outcomes: [EchoOutcome]) -> [String: Int] {
    outcomes.reduce(into: [:]) { counts, outcome in
        if let name = outcome.name { counts[name, default: 0] += 1 }
    }
}
