import Foundation
import XCTest
import Sandbox
#if canImport(Glibc)
import Glibc
#endif

/// The sandbox itself: wiring, routing, echo servers, refusals and cleanup. No nftables.
final class TopologyTests: XCTestCase {
    private var echoBinary = ""
    private var echo: EchoClient { EchoClient(binary: echoBinary) }

    override func setUpWithError() throws {
        EndToEndSuite.enroll(self)
        try requireRoot()
        echoBinary = try BuiltProducts.path(of: "nftproxy-echo")
    }

    func testTopologyWiringEchoAndCleanup() throws {
        try withTopology { t in
            XCTAssertLessThan(t.setupDuration, .seconds(3), "topology setup took \(t.setupDuration)")
            XCTAssertEqual(t.pods.map(\.name), ["pod-1", "pod-2", "pod-3", "pod-4"])
            XCTAssertEqual(t.pods.map(\.node), ["node-1", "node-1", "node-1", "node-2"])
            XCTAssertEqual(Set(namespaceList().filter { $0.hasPrefix(t.prefix + "-") }), Set(t.namespaces))

            let servers = try t.startEchoServers(echoBinary: echoBinary, ports: [8080], protocols: [.tcp, .udp])
            XCTAssertEqual(servers.count, 4)
            XCTAssertEqual(t.runningProcesses.count, 4)

            let pod1 = t.pods[0], pod2 = t.pods[1], pod4 = t.pods[3]
            for proto in [EchoProtocol.tcp, .udp] {
                for v6 in [false, true] {
                    let family = v6 ? "IPv6" : "IPv4"
                    // Same node, directly over cbr0.
                    XCTAssertEqual(try echo.request(from: pod1.host, proto, to: pod2.address(ipv6: v6), port: 8080, count: 2),
                                   Array(repeating: .reply(name: "pod-2", peer: pod1.address(ipv6: v6)), count: 2),
                                   "pod-1 -> pod-2 \(proto) \(family)")
                    // node-1 -> pod-4 on node-2 via the pod-range route; node-1's LAN address is the source.
                    XCTAssertEqual(try echo.requestOnce(from: t.node1, proto, to: pod4.address(ipv6: v6), port: 8080),
                                   .reply(name: "pod-4", peer: t.node1.address(ipv6: v6)),
                                   "node-1 -> pod-4 \(proto) \(family)")
                    // Pod to pod across nodes: forwarded by both nodes, source kept.
                    XCTAssertEqual(try echo.requestOnce(from: pod1.host, proto, to: pod4.address(ipv6: v6), port: 8080),
                                   .reply(name: "pod-4", peer: pod1.address(ipv6: v6)),
                                   "pod-1 -> pod-4 \(proto) \(family)")
                    // The client has no route to the pod network.
                    XCTAssertEqual(try echo.requestOnce(from: t.client, proto, to: pod1.address(ipv6: v6), port: 8080),
                                   .unreachable, "client -> pod-1 \(proto) \(family)")
                }
            }
            // --source picks the client's address on a host with several.
            XCTAssertEqual(try echo.requestOnce(from: t.node1, .tcp, to: pod2.ipv4, port: 8080, source: SandboxLayout.node1.bridgeIPv4),
                           .reply(name: "pod-2", peer: SandboxLayout.node1.bridgeIPv4))

            // SCTP: answered where the kernel supports it, reported as unsupported otherwise.
            if EchoProtocol.sctp.isSupportedByKernel {
                try t.startEchoServers(echoBinary: echoBinary, ports: [9132], protocols: [.sctp], in: [pod2])
                XCTAssertEqual(try echo.requestOnce(from: pod1.host, .sctp, to: pod2.ipv4, port: 9132),
                               .reply(name: "pod-2", peer: pod1.ipv4))
            } else {
                XCTAssertEqual(try echo.requestOnce(from: pod1.host, .sctp, to: pod2.ipv4, port: 8080), .unsupported)
                // A server asked for TCP and SCTP still serves TCP and says why SCTP is missing.
                let server = try t.startEchoServers(echoBinary: echoBinary, ports: [9132], protocols: [.tcp, .sctp], in: [pod2])[0]
                XCTAssertTrue(server.stderr.contains("unsupported: sctp"), server.stderr)
                XCTAssertEqual(try echo.requestOnce(from: pod1.host, .tcp, to: pod2.ipv4, port: 9132),
                               .reply(name: "pod-2", peer: pod1.ipv4))
            }

            // Stopping one pod's server: that pod refuses, the others still answer.
            t.stopEchoServers(in: [pod4])
            XCTAssertEqual(try echo.requestOnce(from: pod1.host, .tcp, to: pod4.ipv4, port: 8080), .refused)
            XCTAssertEqual(try echo.requestOnce(from: pod1.host, .tcp, to: pod2.ipv4, port: 8080),
                           .reply(name: "pod-2", peer: pod1.ipv4))
        }
    }

    func testNoServerMeansRefusedEveryTime() throws {
        try withTopology { t in
            try t.startEchoServers(echoBinary: echoBinary, ports: [8080])
            let pod1 = t.pods[0], pod2 = t.pods[1], pod4 = t.pods[3]
            for proto in [EchoProtocol.tcp, .udp] {
                for v6 in [false, true] {
                    let refused = [EchoOutcome](repeating: .refused, count: 3)
                    XCTAssertEqual(try echo.request(from: pod1.host, proto, to: pod2.address(ipv6: v6), port: 8081, count: 3),
                                   refused, "pod-1 -> pod-2:8081 \(proto) ipv6=\(v6)")
                    // Across both nodes, too (ICMP errors are forwarded back).
                    XCTAssertEqual(try echo.request(from: pod1.host, proto, to: pod4.address(ipv6: v6), port: 8081, count: 3),
                                   refused, "pod-1 -> pod-4:8081 \(proto) ipv6=\(v6)")
                }
            }
        }
    }

    func testHostRunAndTopologyAccessors() throws {
        try withTopology { t in
            XCTAssertEqual(t.host(named: "node-2"), t.node2)
            XCTAssertEqual(t.pod(named: "pod-3")?.ipv4, "198.19.1.13")
            XCTAssertEqual(t.pods(on: "node-2").map(\.name), ["pod-4"])
            let addresses = try t.node1.runChecked(["ip", "-br", "addr", "show", "dev", "cbr0"]).stdout
            XCTAssertTrue(addresses.contains("198.19.1.1/24") && addresses.contains("2001:db8:1:1::1/64"), addresses)
            // Pod veths are bridge ports with hairpin mode, as a bridge CNI sets them up.
            let port = try t.node1.runChecked(["ip", "-d", "link", "show", "dev", SandboxLayout.podVeth("pod-1")]).stdout
            XCTAssertTrue(port.contains("master cbr0") && port.contains("hairpin on"), port)
            let sysctls = try t.node1.runChecked(["sysctl", "-n", "net.ipv4.conf.all.forwarding", "net.ipv6.conf.all.forwarding",
                                                  "net.ipv4.icmp_ratelimit", "net.ipv6.icmp.ratelimit"]).lines
            XCTAssertEqual(sysctls, ["1", "1", "0", "0"])
            let routes = try t.client.runChecked(["ip", "route", "show"]).stdout
            XCTAssertTrue(routes.contains("203.0.113.0/24 via 192.0.2.10"), routes)
            XCTAssertFalse(routes.contains("default"), routes)
            let failed = try t.pods[0].host.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
            XCTAssertEqual(failed.status, 3)
            XCTAssertEqual(failed.stdout, "out\n")
            XCTAssertEqual(failed.stderr, "err\n")
            XCTAssertThrowsError(try failed.check())
            let slow = try t.pods[0].host.run(["sleep", "5"], timeout: .milliseconds(300))
            XCTAssertTrue(slow.timedOut)
            XCTAssertLessThan(slow.duration, .seconds(3))
        }
    }

    func testCreateRejectsPrefixInUse() throws {
        try withTopology { t in
            XCTAssertThrowsError(try Topology.create(prefix: t.prefix)) { error in
                guard case TopologyError.prefixInUse = error else { return XCTFail("\(error)") }
            }
        }
        XCTAssertThrowsError(try Topology.create(prefix: "bad prefix/x")) { error in
            guard case TopologyError.invalidPrefix = error else { return XCTFail("\(error)") }
        }
    }

    /// removeStale deletes namespaces of runs whose PID is gone and keeps live ones.
    func testRemoveStaleKeepsLiveRuns() throws {
        let base = "nftptest"
        let dead = try BackgroundProcess(["true"])
        XCTAssertTrue(dead.wait(timeout: .seconds(5)))
        let deadRun = "\(base)-\(dead.pid)-aaaaaa"
        let liveRun = "\(base)-\(getpid())-bbbbbb"
        let names = ["\(deadRun)-lan", "\(deadRun)-pod-1", "\(liveRun)-lan"]
        defer {
            for name in names { _ = try? CommandRunner().run(["ip", "netns", "del", name]) }
        }
        try CommandRunner().runChecked(["ip", "-batch", "-"], input: names.map { "netns add \($0)\n" }.joined())
        // An orphan process inside the stale run's namespace gets killed too.
        let orphan = try BackgroundProcess(["ip", "netns", "exec", "\(deadRun)-pod-1", "sleep", "60"])
        usleep(100_000)

        let removed = Topology.removeStale(olderRunsWithPrefix: base)
        XCTAssertEqual(removed, ["\(deadRun)-lan", "\(deadRun)-pod-1"])
        XCTAssertTrue(orphan.wait(timeout: .seconds(3)), "process in a stale namespace still runs")
        XCTAssertEqual(namespaceList().filter { $0.hasPrefix(base + "-") }, ["\(liveRun)-lan"])
        XCTAssertTrue(Topology.leftovers(prefix: deadRun).isEmpty)
        XCTAssertEqual(Topology.leftovers(prefix: liveRun).namespaces, ["\(liveRun)-lan"])
    }
}
