import Foundation
import XCTest
import Sandbox
#if canImport(Glibc)
import Glibc
#endif

/// `nftproxy demo`, the README's main command, run as a user would: the built binary.
final class DemoTests: XCTestCase {
    private var nftproxy = ""

    override func setUpWithError() throws {
        EndToEndSuite.enroll(self)
        nftproxy = try BuiltProducts.path(of: "nftproxy")
    }

    /// The sandbox prefix the demo printed ("   sandbox nftp-123-abcdef (LAN bridge ...").
    private func prefix(in output: String) -> String? {
        for line in output.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count >= 2, words[0] == "sandbox" { return String(words[1]) }
        }
        return nil
    }

    /// 60 requests: every reply comes from a replica and saw node-1's cbr0 address, the
    /// tally adds up, all three replicas answer (missed with probability 3·(2/3)^60 ≈ 8e-11),
    /// and the sandbox is gone afterwards.
    func testDemoRunsTalliesAndCleansUp() throws {
        try requireRoot()
        let result = try CommandRunner().run([nftproxy, "demo", "--requests", "60"], timeout: .seconds(60))
        let out = result.stdout
        if let prefix = prefix(in: out) {
            EndToEndSuite.record(prefix: prefix)
            XCTAssertTrue(Topology.leftovers(prefix: prefix).isEmpty, "demo left behind: \(Topology.leftovers(prefix: prefix))")
        } else {
            XCTFail("the demo did not print its sandbox: \(out)")
        }
        XCTAssertTrue(result.succeeded, "\(result)\n\(out)")
        let replies = result.lines.filter { $0.contains(" answered; it saw the source ") }
        XCTAssertEqual(replies.count, 60, out)
        XCTAssertTrue(replies.allSatisfy { $0.hasSuffix(" saw the source 198.19.1.1") }, out)
        var total = 0
        var tallied: [String: Int] = [:]
        for (pod, ip) in [("pod-1", "198.19.1.11"), ("pod-2", "198.19.1.12"), ("pod-3", "198.19.1.13")] {
            guard let line = result.lines.first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("\(pod) (\(ip)):") }),
                  let count = Int(line.split(separator: ":")[1].split(separator: " ").first ?? "") else {
                XCTFail("no tally line for \(pod): \(out)")
                continue
            }
            XCTAssertGreaterThan(count, 0, "\(pod) never answered: \(out)")
            total += count
            tallied[ip] = count
        }
        XCTAssertEqual(total, 60, out)
        // `nftproxy stats` of node-1: each replica's connections are the demo's tally, plus
        // the one ClusterIP connection from pod-1 for whichever replica answered it.
        XCTAssertTrue(out.contains("default/echo-server port http (IPv4): 61 connections"), out)
        var extra = 0
        for (ip, count) in tallied {
            let row = result.lines.first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("\(ip):8080 ") }
            let counted = row.flatMap { Int($0.split(separator: " ")[3]) }
            XCTAssertTrue(counted == count || counted == count + 1, "stats row of \(ip): \(row ?? "none"), tally \(count)")
            extra += (counted ?? 0) - count
        }
        XCTAssertEqual(extra, 1, out)
        XCTAssertTrue(out.contains("Every replica saw 198.19.1.1"), out)
        XCTAssertTrue(out.contains("Removed the sandbox"), out)
    }

    /// `--keep` leaves the sandbox up and prints how to poke it; Ctrl-C removes all of it and
    /// the demo then dies by SIGINT, as an interrupted program should.
    func testDemoKeepIsRemovedOnCtrlC() throws {
        try requireRoot()
        let demo = try BackgroundProcess([nftproxy, "demo", "--keep", "--requests", "3"])
        defer { demo.stop() }
        try demo.waitForLine("Press Ctrl-C to remove it.", timeout: .seconds(30))
        guard let prefix = prefix(in: demo.stdout) else { return XCTFail("no sandbox prefix in \(demo.stdout)") }
        EndToEndSuite.record(prefix: prefix)
        XCTAssertEqual(Topology.leftovers(prefix: prefix).namespaces.count, 8, "the sandbox should still be up")
        let pokes = demo.lines.filter { $0.hasPrefix("  ip netns exec \(prefix)-") }
        XCTAssertEqual(pokes.count, 4, demo.stdout)

        // One of the printed commands, run as printed.
        let request = try XCTUnwrap(pokes.first { $0.contains(" request --tcp 192.0.2.10 32000") })
        let poked = try CommandRunner().run(request.split(separator: " ").map(String.init))
        XCTAssertEqual(poked.lines.count, 5, "\(poked)")
        XCTAssertTrue(poked.lines.allSatisfy { $0.hasSuffix(" 198.19.1.1") }, "\(poked.stdout)")

        demo.signal(SIGINT)
        XCTAssertTrue(demo.wait(timeout: .seconds(20)), "the demo did not end after Ctrl-C")
        XCTAssertEqual(demo.exitStatus, 128 + SIGINT, "stderr: \(demo.stderr)")
        XCTAssertTrue(demo.stderr.contains("removing the sandbox"), demo.stderr)
        let left = Topology.leftovers(prefix: prefix)
        XCTAssertTrue(left.isEmpty, "left behind after Ctrl-C: \(left)")
    }

    /// Without root the demo says so and changes nothing.
    func testDemoRefusesWithoutRoot() throws {
        try requireRoot()
        guard let setpriv = CommandRunner.resolveExecutable("setpriv") else { throw XCTSkip("needs setpriv (util-linux)") }
        let result = try CommandRunner().run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", nftproxy, "demo"])
        guard !result.stderr.contains("Permission denied") else {
            throw XCTSkip("the nftproxy binary is not executable by nobody here: \(result.stderr)")
        }
        XCTAssertEqual(result.status, 1, "\(result)")
        XCTAssertTrue(result.stderr.contains("must run as root"), result.stderr)
        XCTAssertEqual(result.stdout, "")
    }
}
