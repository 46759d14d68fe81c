import Foundation
import KubeAPIStandIn
import Sandbox
import XCTest

/// `nftproxy run` killed with SIGKILL in the middle of a stream of updates, and a new daemon
/// started while the updates go on: traffic never notices. An established TCP connection
/// through a NodePort carries data before, during and after; new connections attempted in a
/// loop from the client all get through (none refused: the rules are never flushed); the
/// new daemon adopts the kernel's table (the same table, not a new one) and converges on the
/// final state of the stream, in which a third daemon then finds nothing to commit.
final class DaemonRestartTests: XCTestCase {
    override func setUpWithError() throws {
        EndToEndSuite.enroll(self)
        try requireRoot()
    }

    private static let nodeIP = SandboxLayout.node1.lanIPv4
    private static let sessionPort: UInt16 = 9000


    private func poll(_ limit: Duration = .seconds(20), _ condition: () throws -> Bool) rethrows -> Bool {
        let clock = ContinuousClock(), start = clock.now
        while clock.now - start < limit {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    /// The handle of `ip nftproxy`: a table that was deleted and created again has a new one.
    private func tableHandle(_ s: ServiceSandbox) throws -> String? {
        let listing = try s.node1.runChecked(["nft", "-a", "list", "table", "ip", "nftproxy"]).stdout
        guard let line = listing.split(separator: "\n").first(where: { $0.hasPrefix("table ip nftproxy") }),
              let range = line.range(of: "# handle ") else { return nil }
        return String(line[range.upperBound...]).trimmingCharacters(in: .whitespaces)
    }

    func testSIGKILLDuringAStreamOfUpdatesKeepsTrafficFlowingAndTheNewDaemonAdopts() throws {
        let api = try blocking { try await DaemonAPI.start("restart", token: "token", tokenInFile: false) }
        defer { api.removeDirectory() }
        let server = api.server, kubeconfig = api.kubeconfig, pki = api.directory
        defer { try? blocking { await server.shutdown() } }
        let metricsPort = try freeLoopbackPort()
        let stopFile = pki + "/stop"

        try ServiceSandbox.run { s in
            let echo = try BuiltProducts.path(of: "nftproxy-echo")
            let sessionServer = try s.topology.spawn(in: s.pod(1).host, [
                echo, "serve", "--name", s.pod(1).name, "--port", String(Self.sessionPort),
                "--session-port", String(Self.sessionPort), "--tcp", "--exit-with-stdin", "--label", s.topology.prefix])
            try sessionServer.waitForLine("ready")

            var model = ChurnModel(pods: s.pods.prefix(3).map(\.ipv4), podNodes: s.pods.prefix(3).map(\.node))
            for object in model.fixedObjects(sessionPod: s.pod(1)) { try server.put(object.resource, object: object.body) }
            for step in 0..<ChurnModel.services { try model.step(step).apply(to: server) }

            let arguments = [s.nftproxy, "run", "--kubeconfig", kubeconfig, "--netns", s.node1.namespace,
                             "--min-sync-period", "0", "--healthz-bind-address", "127.0.0.1:0",
                             "--metrics-bind-address", "127.0.0.1:\(metricsPort)"] + ServiceSandbox.nodeOptions
            var daemon = try BackgroundProcess(arguments)
            defer { daemon.stop() }
            let served = ServiceTests.sources([s.pod(1), s.pod(2)], all: ServiceTests.masq4)
            XCTAssertTrue(try poll {
                try s.request(from: s.client, to: Self.nodeIP, port: 32000, count: 4).allSatisfy { served[$0.name ?? ""] != nil }
            }, "the first daemon never served the NodePort:\n\(daemon.stderr.suffix(3000))")
            let handleBefore = try tableHandle(s)
            XCTAssertNotNil(handleBefore)

            // One long TCP connection (an exchange every 20 ms for 8 s), and new connections
            // in a loop, each line of the loop stamped with /proc/uptime.
            let session = try s.topology.spawn(in: s.client, [
                echo, "session", "--tcp", Self.nodeIP, "32001", "--count", "400", "--interval-ms", "20"])
            let connects = try s.topology.spawn(in: s.client, ["/bin/sh", "-c", """
                while [ ! -e \(stopFile) ]; do
                    echo "at $(cut -d' ' -f1 /proc/uptime)"
                    \(echo) request --tcp \(Self.nodeIP) 32000 --count 5 --timeout-ms 1000
                done
                """])

            // The stream of updates: another churn service changes every 10 ms, throughout.
            let stream = UpdateStream(model: model, steps: ChurnModel.services)
            let updater = Thread { stream.run(server) }
            updater.start()

            Thread.sleep(forTimeInterval: 1)
            let killedAt = uptime()
            daemon.signal(SIGKILL)
            XCTAssertTrue(daemon.wait(timeout: .seconds(10)), "SIGKILL did not end the daemon")
            Thread.sleep(forTimeInterval: 0.5)  // no daemon at all while updates arrive
            daemon = try BackgroundProcess(arguments)
            XCTAssertTrue(poll { (try? metrics(metricsPort))?.contains(#"reason="first-apply"} 1"#) ?? false },
                          "the new daemon never synced:\n\(daemon.stderr.suffix(3000))")
            let adoptedAt = uptime()
            Thread.sleep(forTimeInterval: 1.5)
            stream.stop()
            while !updater.isFinished { Thread.sleep(forTimeInterval: 0.01) }
            XCTAssertTrue(FileManager.default.createFile(atPath: stopFile, contents: nil), "cannot write \(stopFile)")
            XCTAssertTrue(connects.wait(timeout: .seconds(15)), "the connect loop did not stop")
            XCTAssertTrue(session.wait(timeout: .seconds(20)), "the session did not finish")

            let (_, steps, updateError) = stream.result
            XCTAssertNil(updateError)
            XCTAssertGreaterThan(steps - ChurnModel.services, 100, "too few updates streamed")

            // The long connection carried every exchange, all with the one endpoint.
            XCTAssertEqual(session.exitStatus, 0, "the connection broke: \(session.lines.suffix(5))")
            _ = poll(.seconds(5)) { session.lines.count >= 400 }  // its output may still be on the way
            XCTAssertEqual(session.lines.count, 400)
            XCTAssertEqual(Set(session.lines.compactMap { $0.split(separator: " ").first.map(String.init) }), [s.pod(1).name])

            // Every new connection got through, also those while no daemon ran.
            var attempts: [(at: Double, outcome: EchoOutcome)] = []
            var stamp = 0.0
            for line in connects.lines {
                if line.hasPrefix("at "), let time = Double(line.dropFirst(3)) { stamp = time; continue }
                attempts.append((stamp, EchoOutcome(line: line)))
            }
            let duringRestart = attempts.filter { $0.at >= killedAt && $0.at <= adoptedAt }
            let failures = attempts.filter { served[$0.outcome.name ?? ""] == nil }
            print("restart: \(attempts.count) new connections, \(duringRestart.count) of them between SIGKILL and the new "
                  + "daemon's first sync (\(String(format: "%.2f", adoptedAt - killedAt)) s), \(failures.count) failed; "
                  + "\(steps - ChurnModel.services) updates streamed; the long connection: \(session.lines.count) exchanges")
            XCTAssertTrue(failures.isEmpty, "\(failures.count) of \(attempts.count) new connections failed, e.g. "
                          + "\(failures.prefix(5).map(\.outcome))")
            XCTAssertFalse(attempts.contains { $0.outcome == .refused }, "a new connection was refused")
            XCTAssertGreaterThan(duringRestart.count, 10,
                                 "too few connections attempted while the daemon restarted (\(duringRestart.count) of \(attempts.count))")

            // The same table (never deleted or flushed), and the final state of the stream: a
            // third daemon, started after the stream, finds nothing to commit.
            XCTAssertEqual(try tableHandle(s), handleBefore, "the new daemon replaced the table")
            XCTAssertTrue(daemon.isRunning)
            daemon.signal(SIGTERM)
            XCTAssertTrue(daemon.wait(timeout: .seconds(10)))
            daemon = try BackgroundProcess(arguments)
            XCTAssertTrue(poll { (try? metrics(metricsPort))?.contains(#"reason="first-apply"} 1"#) ?? false },
                          "the third daemon never synced:\n\(daemon.stderr.suffix(3000))")
            let operations = try metrics(metricsPort).split(separator: "\n").first { $0.hasPrefix("nftproxy_kernel_operations_total ") }
            XCTAssertEqual(operations, "nftproxy_kernel_operations_total 0",
                           "the restarted daemon had not converged on the final state of the stream (\(steps) steps)")
        }
    }
}

/// Applies steps of a `ChurnModel` to the stand-in every 10 ms until stopped.
private final class UpdateStream: @unchecked Sendable {
    private let lock = NSLock()
    private var model: ChurnModel
    private var steps: Int
    private var error: String?
    private var stopped = false

    init(model: ChurnModel, steps: Int) {
        self.model = model
        self.steps = steps
    }

    func run(_ server: StandInAPIServer) {
        while true {
            lock.lock()
            if stopped || error != nil {
                lock.unlock()
                return
            }
            do {
                try model.step(steps).apply(to: server)
                steps += 1
            } catch {
                self.error = "\(error)"
            }
            lock.unlock()
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    func stop() {
        lock.lock(); defer { lock.unlock() }
        stopped = true
    }

    /// The model after the last step, the number of steps (the first ones before the stream) and the error, if any.
    var result: (ChurnModel, Int, String?) {
        lock.lock(); defer { lock.unlock() }
        return (model, steps, error)
    }
}

/// Seconds since boot (/proc/uptime): the clock the connect loop stamps its lines with.
private func uptime() -> Double {
    let text = (try? String(contentsOfFile: "/proc/uptime", encoding: .utf8)) ?? ""
    return Double(text.split(separator: " ").first ?? "") ?? 0
}

private func metrics(_ port: Int) throws -> String {
    try String(contentsOf: URL(string: "http://127.0.0.1:\(port)/metrics")!, encoding: .utf8)
}

/// The objects of the restart test: two fixed NodePort services, `echo` (32000, pods 1 and 2
/// on 8080) and `session` (32001, pod 1 on the session port), and `services` churn services
/// that a stream of steps changes one at a time: each step gives one of them another
/// endpoint set and port, or deletes it, or creates it again.
struct ChurnModel: Sendable {
    static let services = 8
    let pods: [String]
    let podNodes: [String]
    /// The churn services that exist now.
    private(set) var existing: Set<String> = []

    init(pods: [String], podNodes: [String]) {
        self.pods = pods
        self.podNodes = podNodes
    }

    struct Object {
        var resource: ServedResource
        var body: [String: Any]
    }

    /// What one step does to the stand-in.
    struct Change {
        var puts: [Object] = []
        var deletes: [(ServedResource, String)] = []

        func apply(to server: StandInAPIServer) throws {
            for object in puts { try server.put(object.resource, object: object.body) }
            for (resource, name) in deletes { try server.delete(resource, namespace: "default", name: name) }
        }
    }

    private static func service(_ name: String, ip: String, port: Int, nodePort: Int? = nil) -> [String: Any] {
        var servicePort: [String: Any] = ["name": "http", "protocol": "TCP", "port": port]
        if let nodePort { servicePort["nodePort"] = nodePort }
        return ["apiVersion": "v1", "kind": "Service", "metadata": ["name": name, "namespace": "default"],
                "spec": ["type": nodePort == nil ? "ClusterIP" : "NodePort", "clusterIP": ip, "ports": [servicePort]]]
    }

    private static func slice(_ name: String, service: String, port: Int, addresses: [(String, String)]) -> [String: Any] {
        ["apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
         "metadata": ["name": name, "namespace": "default", "labels": ["kubernetes.io/service-name": service]],
         "ports": [["name": "http", "protocol": "TCP", "port": port]],
         "endpoints": addresses.map { ["addresses": [$0.0], "conditions": ["ready": true], "nodeName": $0.1] }]
    }

    func fixedObjects(sessionPod: Pod) -> [Object] {
        [Object(resource: .services, body: Self.service("echo", ip: "198.18.0.10", port: 80, nodePort: 32000)),
         Object(resource: .endpointSlices, body: Self.slice("echo-1", service: "echo", port: 8080,
                                                            addresses: [(pods[0], podNodes[0]), (pods[1], podNodes[1])])),
         Object(resource: .services, body: Self.service("session", ip: "198.18.0.11", port: 80, nodePort: 32001)),
         Object(resource: .endpointSlices, body: Self.slice("session-1", service: "session", port: 9000,
                                                            addresses: [(sessionPod.ipv4, sessionPod.node)]))]
    }

    /// Step `n` changes churn service `n % services`: every fifth time it is deleted (or,
    /// if deleted, created again); otherwise it gets 1 to 3 pods and another port.
    mutating func step(_ n: Int) -> Change {
        let index = n % Self.services, round = n / Self.services
        let name = "churn-\(index)", sliceName = "churn-\(index)-1"
        var change = Change()
        if round % 5 == 4, existing.contains(name) {
            change.deletes = [(.endpointSlices, sliceName), (.services, name)]
            existing.remove(name)
            return change
        }
        let service = Self.service(name, ip: "198.18.1.\(index + 1)", port: 80 + round % 7)
        let count = 1 + (round + index) % 3
        let slice = Self.slice(sliceName, service: name, port: 8080,
                               addresses: (0..<count).map { (pods[$0], podNodes[$0]) })
        change.puts = [Object(resource: .services, body: service), Object(resource: .endpointSlices, body: slice)]
        existing.insert(name)
        return change
    }

}
