import Foundation
import XCTest
import Sandbox
#if canImport(Glibc)
import Glibc
#endif

/// `Topology.installSignalCleanup()`: a process holding a topology that gets SIGINT or
/// SIGTERM removes its namespaces and echo servers before it dies.
///
/// The test runs this test binary again, selecting only `SignalCleanupHelper`, which
/// builds a topology, prints its prefix and waits to be signalled.
final class SignalCleanupTests: XCTestCase {
    static let helperEnvironment = "NFTPROXY_SANDBOX_SIGNAL_HELPER"

    override func setUpWithError() throws {
        EndToEndSuite.enroll(self)
        try requireRoot()
    }

    func testSIGTERMCleansUp() throws { try checkCleanup(on: SIGTERM) }
    func testSIGINTCleansUp() throws { try checkCleanup(on: SIGINT) }

    private func checkCleanup(on sig: Int32) throws {
        let echo = try BuiltProducts.path(of: "nftproxy-echo")
        guard let testBinary = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            throw XCTSkip("cannot find the running test binary")
        }
        let helper = try BackgroundProcess(
            [testBinary, "EndToEndTests.SignalCleanupHelper/testHoldTopologyUntilSignalled"],
            environment: [Self.helperEnvironment: echo])
        defer { helper.stop() }
        let line = try helper.waitForLine(timeout: .seconds(30), description: "the sandbox prefix") {
            $0.hasPrefix("SANDBOX-PREFIX ")
        }
        let prefix = String(line.dropFirst("SANDBOX-PREFIX ".count))
        EndToEndSuite.record(prefix: prefix)
        XCTAssertEqual(Topology.leftovers(prefix: prefix).namespaces.count, 8)
        XCTAssertEqual(Topology.leftovers(prefix: prefix).processes.count, 4, "the helper's echo servers")

        helper.signal(sig)
        XCTAssertTrue(helper.wait(timeout: .seconds(20)), "helper did not exit after signal \(sig)")
        XCTAssertEqual(helper.exitStatus, 128 + sig, "helper should die by the signal; stderr: \(helper.stderr)")
        let left = Topology.leftovers(prefix: prefix)
        XCTAssertTrue(left.isEmpty, "left behind after signal \(sig): \(left)")
        if !left.isEmpty { Topology.removeStale(olderRunsWithPrefix: Topology.defaultBase) }
    }
}

/// Only does something when started by `SignalCleanupTests`.
final class SignalCleanupHelper: XCTestCase {
    func testHoldTopologyUntilSignalled() throws {
        guard let echo = ProcessInfo.processInfo.environment[SignalCleanupTests.helperEnvironment] else {
            throw XCTSkip("helper for SignalCleanupTests; runs only when started by them")
        }
        Topology.installSignalCleanup { sig in
            FileHandle.standardError.write(Data("helper: signal \(sig), cleaning up\n".utf8))
        }
        let topology = try Topology.create()
        try topology.startEchoServers(echoBinary: echo, ports: [8080])
        FileHandle.standardOutput.write(Data("SANDBOX-PREFIX \(topology.prefix)\n".utf8))
        // Wait to be signalled; the signal handler destroys the topology and ends the process.
        for _ in 0..<600 { usleep(100_000) }
        topology.destroy()
        XCTFail("helper was not signalled within 60 s")
    }
}
