import ArgumentParser
import Foundation
import KubeObjects
import Nftables
import ProxyCompiler
import ProxyEngine
import Sandbox
import ServiceModel
#if canImport(Glibc)
import Glibc
#endif

/// `nftproxy-demo` (also run as `nftproxy demo`): the echo-server NodePort in a sandbox of
/// network namespaces.
///
/// Builds the sandbox topology (client, two nodes, four pods; see `SandboxLayout`), runs the
/// echo-server "Deployment" as `nftproxy-echo` servers in pod-1..3, programs node-1 from the
/// objects of `examples/echo-server.yaml` through the same library path as `nftproxy apply`
/// (decode, compile, sync over netlink into node-1's namespace), then sends requests from
/// the external client to the NodePort and shows which replica answered and which source
/// address it saw. Everything lives in the sandbox's own namespaces and is removed at the
/// end, on Ctrl-C too; the namespace the command runs in is never changed.
///
/// The demo is its own executable so that the `nftproxy` binary does not link the test
/// sandbox; `nftproxy demo` runs this program when it is installed next to it.
@main
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nftproxy-demo",
        abstract: "Run the echo-server NodePort demo in a sandbox of network namespaces (as root).",
        discussion: """
            Creates network namespaces for an external client, two nodes and four pods, starts \
            three echo-server replicas, programs node-1 with nftproxy, sends requests to the \
            NodePort 192.0.2.10:32000 and tallies the replicas that answered. Removes everything \
            when done or interrupted. Needs root and the nftproxy-echo binary built next to it.
            """)

    @Option(help: "How many requests the external client sends to the NodePort.")
    var requests = 30

    @Flag(help: "Keep the sandbox running after the requests (until Ctrl-C) and print commands to poke it.")
    var keep = false

    @Option(help: ArgumentHelp(
        "The Kubernetes objects to program (default: examples/echo-server.yaml of the nftproxy checkout).",
        valueName: "file"))
    var objects: String?

    @Flag(help: "Print the Kubernetes objects the demo programs and exit.")
    var printObjects = false

    func validate() throws {
        guard (1...100_000).contains(requests) else {
            throw ValidationError("--requests must be between 1 and 100000")
        }
    }

    func run() throws {
        if printObjects {
            print(try loadExample().text, terminator: "")
            return
        }
        guard geteuid() == 0 else {
            printError("nftproxy demo: must run as root: it creates network namespaces and programs nf_tables inside them"
                       + " (e.g. `sudo \(CommandLine.arguments[0]) demo`)")
            throw ExitCode(1)
        }
        guard CommandRunner.resolveExecutable("ip") != nil else {
            printError("nftproxy demo: the `ip` command (iproute2) is missing; install it (apt-get install iproute2)")
            throw ExitCode(1)
        }
        let example = try loadExample()
        let echoBinary: String
        do {
            echoBinary = try BuiltProducts.path(of: "nftproxy-echo")
        } catch {
            printError("nftproxy demo: \(error)")
            throw ExitCode(1)
        }

        Topology.installSignalCleanup { signal in
            printError("\nnftproxy demo: \(signal == SIGINT ? "interrupted" : "signal \(signal)"); removing the sandbox")
        }
        let stale = Topology.removeStale()
        if !stale.isEmpty {
            say("Removed \(stale.count) sandbox namespaces left over by runs whose process is gone: \(stale.joined(separator: ", "))\n")
        }

        let topology: Topology
        do {
            topology = try Topology.create()
        } catch {
            printError("nftproxy demo: \(error)")
            throw ExitCode(1)
        }
        let prefix = topology.prefix
        defer {
            topology.destroy()
            let left = Topology.leftovers(prefix: prefix)
            say(left.isEmpty ? "\nRemoved the sandbox: its namespaces (with their links, nftables tables and conntrack"
                    + " entries) and processes are gone."
                : "\nnftproxy demo: could not remove everything: \(left)")
        }
        do {
            try show(topology, echoBinary: echoBinary, example: example)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("nftproxy demo: \(error)")
            throw ExitCode(1)
        }
    }

    /// The objects to program, or exit 1 naming what was missing.
    private func loadExample() throws -> ExampleObjects {
        do {
            return try ExampleObjects.load(path: objects)
        } catch {
            printError("nftproxy demo: \(error)")
            throw ExitCode(1)
        }
    }

    private func show(_ topology: Topology, echoBinary: String, example: ExampleObjects) throws {
        let layout = SandboxLayout.self
        let nodeAddress = layout.node1.lanIPv4
        let replicas = topology.pods(on: layout.node1.name)

        say("""
            nftproxy demo: a NodePort Service in front of a 3-replica echo-server, on a sandbox of \
            network namespaces
            (a replica answers each connection with its name and the source address it saw)

            1. The sandbox, built in \(Self.format(topology.setupDuration)):
            \(topology.summary.split(separator: "\n").map { "   " + $0 }.joined(separator: "\n"))
               The client routes \(layout.externalIPv4CIDR) via node-1 but has no route to the pod network; \
            nftproxy programs node-1 only.

            """)

        try topology.startEchoServers(echoBinary: echoBinary, ports: [8080], protocols: [.tcp], in: replicas)
        say("2. The echo-server Deployment: \(replicas.count) replicas, \(replicas.map { "\($0.name) \($0.ipv4):8080" }.joined(separator: ", ")).\n")

        // The `nftproxy apply` path, in-process: decode, then ServiceProxy (compile, sync, conntrack) into node-1.
        var decoder = KubeObjectDecoder()
        try decoder.add(contents: example.text, source: example.path)
        let (services, decodeWarnings) = try decoder.serviceMap()
        let node = NodeConfig(
            nodeName: layout.node1.name,
            nodeIPs: [IPAddress(layout.node1.lanIPv4)!, IPAddress(layout.node1.lanIPv6)!],
            clusterCIDRs: [CIDR(layout.clusterIPv4CIDR)!, CIDR(layout.clusterIPv6CIDR)!])
        let proxy = try ServiceProxy(node: node, networkNamespace: topology.node1.namespace)
        let applied = try proxy.apply(services)
        let report = applied.sync
        say("""
            3. nftproxy apply: the objects of \(example.path) (a Deployment, skipped; \
            Service default/echo-server, ClusterIP 198.18.0.10:80, NodePort 32000, targetPort `http`; \
            its EndpointSlice, port `http` = 8080, 3 ready endpoints), node-1, cluster CIDRs \
            \(layout.clusterIPv4CIDR) and \(layout.clusterIPv6CIDR):
               committed \(report.operations) netlink operations in one transaction \
            (\(report.elementsAdded) set elements) into node-1's namespace.
            """)
        for warning in decodeWarnings + applied.warnings.filter({ !decodeWarnings.contains($0) }) {
            say("   warning: \(warning)")
        }
        if let table = Compiler(node: node).compile(services).ruleset.table(.ip, RulesetLayout.tableName) {
            say("   From table ip nftproxy (`ip netns exec \(topology.node1.namespace) nft list table ip nftproxy` shows all of it):")
            say(Self.excerpt(of: table))
        }

        let echo = EchoClient(binary: echoBinary)
        say("4. \(requests) requests from the client (\(layout.clientIPv4)) to the NodePort \(nodeAddress):32000, one connection each:")
        let outcomes = try echo.request(from: topology.client, .tcp, to: nodeAddress, port: 32000, count: requests)
        let width = String(requests).count
        for (index, outcome) in outcomes.enumerated() {
            let number = String(repeating: " ", count: width - String(index + 1).count) + String(index + 1)
            switch outcome {
            case .reply(let name, let peer): say("   \(number)  \(name) answered; it saw the source \(peer)")
            default: say("   \(number)  \(outcome)")
            }
        }
        let counts = outcomes.reduce(into: [String: Int]()) { counts, outcome in
            if let name = outcome.name { counts[name, default: 0] += 1 }
        }
        let peers = Set(outcomes.compactMap(\.peer))
        say("\n   Replies per replica (\(requests) requests, \(String(format: "%.1f", Double(requests) / Double(replicas.count))) expected each):")
        for pod in replicas {
            let count = counts[pod.name] ?? 0
            say("     \(pod.name) (\(pod.ipv4)): \(String(repeating: " ", count: width - String(count).count))\(count)  "
                + String(repeating: "#", count: count * 40 / max(requests, 1)))
        }
        let failures = outcomes.filter { $0.name == nil }.count
        if failures > 0 { say("     no reply: \(failures)") }
        if peers == [layout.node1.bridgeIPv4] {
            say("   Every replica saw \(layout.node1.bridgeIPv4), node-1's address on the pod bridge: external traffic is "
                + "masqueraded, so the replies return through node-1 (not to the client directly, which has no route to the pods).")
        } else {
            say("   Sources seen: \(peers.sorted())")
        }

        // From inside the cluster, for contrast: a pod keeps its own source address.
        let fromPod = replicas[0]
        let inside = try echo.requestOnce(from: fromPod.host, .tcp, to: "198.18.0.10", port: 80)
        say("\n5. From a pod: \(fromPod.name) (\(fromPod.ipv4)) -> ClusterIP 198.18.0.10:80: "
            + (inside.name.map { name in
                "\(name) answered and saw \(inside.peer ?? "?")"
                    + (inside.peer == fromPod.ipv4 ? " (a pod's source is kept)"
                        : inside.peer == layout.node1.bridgeIPv4 ? " (it reached itself: hairpin traffic is masqueraded)" : "")
            } ?? "\(inside)"))

        // What the node itself says: its kernel counted every endpoint's connections, packets
        // and bytes (NodePort and ClusterIP summed), and names them without any input.
        let nftproxy = ExampleObjects.sibling("nftproxy")
        let stats = try CommandRunner().run([nftproxy, "stats", "--netns", topology.node1.namespace], timeout: .seconds(30))
        say("""

            6. nftproxy stats --netns \(topology.node1.namespace): node-1's own per-pod view, read from its kernel \
            (no input, no API; a NodePort usually gives none). Its connections are step 4's tally plus \
            step 5's one connection:
            """)
        say(stats.succeeded ? stats.stdout.split(separator: "\n").map { "   " + $0 }.joined(separator: "\n")
            : "   nftproxy stats failed: \(stats.stderr)")

        if keep {
            let client = topology.client.namespace, pod1 = topology.pods[0].host.namespace
            say("""

                The sandbox keeps running. In another shell (as root), try:
                  ip netns exec \(client) \(echoBinary) request --tcp \(nodeAddress) 32000 --count 5
                  ip netns exec \(pod1) \(echoBinary) request --tcp 198.18.0.10 80 --count 5
                  ip netns exec \(topology.node1.namespace) nft list table ip nftproxy
                  ip netns exec \(topology.node1.namespace) conntrack -L
                  \(nftproxy) stats --netns \(topology.node1.namespace) --watch 2
                  \(ExampleObjects.sibling("nftproxy")) apply -f \(example.path) --netns \(topology.node1.namespace) \
                --node-name node-1 --cluster-cidr \(layout.clusterIPv4CIDR) --cluster-cidr \(layout.clusterIPv6CIDR)
                Press Ctrl-C to remove it.
                """)
            while true { sleep(3600) }
        }
    }

    /// The parts of the table a NodePort connection goes through.
    static func excerpt(of table: Table) -> String {
        let renderer = ScriptRenderer()
        let sets = ["service-ips", "service-nodeports", "nodeport-backends-3"]
        let chains = ["services", "nodeport-lb-3", "masquerading"]
        var parts: [String] = []
        for name in sets {
            if let set = table.sets.first(where: { $0.name == name }) { parts.append(renderer.render(set)) }
        }
        for name in chains {
            if let chain = table.chains.first(where: { $0.name == name }) { parts.append(renderer.render(chain)) }
        }
        return parts.joined(separator: "\n").split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in line.isEmpty ? "" : "   " + expandTabs(line.hasPrefix("\t") ? line.dropFirst() : line[...]) }
            .joined(separator: "\n")
    }

    /// Tabs to spaces at 8-column stops, as a terminal shows them (keeps nft's alignment).
    static func expandTabs(_ line: Substring) -> String {
        var out = ""
        for character in line {
            if character == "\t" {
                out += String(repeating: " ", count: 8 - out.count % 8)
            } else {
                out.append(character)
            }
        }
        return out
    }

    static func format(_ duration: Duration) -> String {
        let c = duration.components
        return String(format: "%.2f s", Double(c.seconds) + Double(c.attoseconds) / 1e18)
    }
}

/// Prints a line on stdout at once (the demo is watched live).
private func say(_ text: String) {
    print(text)
    fflush(nil)
}

/// An error line on stderr.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
