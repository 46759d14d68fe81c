import ArgumentParser
import Foundation
import Netlink
import ProxyEngine
import Sandbox
import ServiceModel

/// `nftproxy-bench traffic`: the per-packet cost of the endpoint counters, with real traffic.
struct Traffic: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connections per second through a NodePort of the sandbox, endpoint counters on and off in turn.",
        discussion: """
            Builds the sandbox topology (client, node-1 with three echo pods, node-2), programs a \
            NodePort service with three endpoints on node-1 through ServiceProxy, and times ROUNDS \
            rounds of CONNECTIONS sequential TCP connections from the client (nftproxy-echo request: \
            connect, read the pod's line, close; 8 packets each) with counters on, then off, then on \
            ... (the table is re-programmed between rounds, which replaces it). Prints each round and \
            the medians; the sandbox is removed afterwards, also on SIGINT/SIGTERM/SIGHUP.
            """)

    @Option(help: "Sequential connections per round.")
    var connections = 2000

    @Option(help: "Rounds per setting (alternating on, off).")
    var rounds = 5

    func run() throws {
        let echo = try BuiltProducts.path(of: "nftproxy-echo")
        Topology.installSignalCleanup { _ in }
        let topology = try Topology.create()
        defer { topology.destroy() }
        try topology.startEchoServers(echoBinary: echo, ports: [8080], protocols: [.tcp])
        let layout = SandboxLayout.self
        let pods = topology.pods(on: layout.node1.name)
        func address(_ text: String) throws -> IPAddress {
            guard let parsed = IPAddress(text) else { throw BenchError("not an address: \(text)") }
            return parsed
        }
        guard let podRange = CIDR(layout.clusterIPv4CIDR) else { throw BenchError("not a CIDR: \(layout.clusterIPv4CIDR)") }
        let service = Service(
            name: ServiceName(namespace: "bench", name: "traffic"), clusterIPs: [try address("198.18.0.10")],
            ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 32000,
                                endpoints: pods.compactMap { pod in
                                    IPAddress(pod.ipv4).map { Endpoint(address: $0, port: 8080, nodeName: pod.node) }
                                })])
        let client = EchoClient(binary: echo)
        var rates: [Bool: [Double]] = [:]
        for round in 0..<(2 * rounds) {
            let counters = round % 2 == 0
            let node = NodeConfig(nodeName: layout.node1.name, nodeIPs: [try address(layout.node1.lanIPv4)],
                                  clusterCIDRs: [podRange], endpointCounters: counters)
            let proxy = ServiceProxy(node: node, kernel: try NetlinkKernel(networkNamespace: topology.node1.namespace))
            try proxy.apply(ServiceMap(services: [service]))
            let start = ContinuousClock.now
            let outcomes = try client.request(from: topology.client, .tcp, to: layout.node1.lanIPv4, port: 32000,
                                              count: connections)
            let elapsed = ContinuousClock.now - start
            let answered = outcomes.filter { $0.name != nil }.count
            // On a loaded machine a connection may time out (1 s); it is reported, and the
            // round's rate counts answered connections only.
            guard answered * 100 >= connections * 99 else { throw BenchError("\(connections - answered) connections unanswered") }
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let rate = Double(answered) / seconds
            rates[counters, default: []].append(rate)
            printErr("round \(round + 1): counters \(counters ? "on " : "off"): \(Int(rate)) connections/s"
                     + (answered < connections ? " (\(connections - answered) timed out)" : ""))
        }
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        }
        let on = rates[true] ?? [], off = rates[false] ?? []
        let line = String(format: "counters on: median %.0f connections/s (%.0f–%.0f); off: median %.0f (%.0f–%.0f); on/off %.3f",
                          median(on), on.min() ?? 0, on.max() ?? 0, median(off), off.min() ?? 0, off.max() ?? 0,
                          median(on) / max(median(off), 1))
        writeOut(line + "\n")
    }
}
