import ArgumentParser

struct NftproxyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nftproxy-bench",
        abstract: "Scale benchmark: N services x M endpoints, rules only, in private network namespaces.",
        discussion: """
            ClusterIPs come from 198.18.0.0/15, endpoints from 100.64.0.0/10. Everything that touches \
            the kernel runs in a network namespace created for it, never in the machine's own. \
            tools/benchmark.sh runs the whole benchmark and writes docs/benchmarks.md.
            """,
        subcommands: [Generate.self, Run.self, Load.self, Report.self, Objects.self, EndToEnd.self, EndToEndReport.self,
                      Traffic.self, DaemonBench.self]
    )
}

/// The workload options shared by the subcommands.
struct WorkloadOptions: ParsableArguments {
    @Option(help: "Number of services (one TCP port 80 each).")
    var services = 1000

    @Option(help: "Ready endpoints per service (port 8080).")
    var endpoints = 10

    @Option(help: "Give the first K services a NodePort (30000 + index), K <= \(Workload.maximumNodePorts).")
    var nodePorts = 0

    @Option(help: "Spread the endpoints over this many nodes (endpoint k on node-<k mod nodes>); the benchmark programs node-0. 0: endpoints without node names, all possibly local (the worst case for hairpin-endpoints).")
    var nodes = 0

    @Flag(help: "10 % of the services externalTrafficPolicy Local with an externalIP, 10 % internalTrafficPolicy Local, 10 % sessionAffinity ClientIP.")
    var trafficPolicies = false

    @Option(help: ArgumentHelp("Per-endpoint counters in the ruleset, as nftproxy's --endpoint-counters.", valueName: "true|false"))
    var endpointCounters = true

    var workload: Workload {
        Workload(services: services, endpoints: endpoints, nodePorts: nodePorts, nodes: nodes, trafficPolicies: trafficPolicies,
                 endpointCounters: endpointCounters)
    }

    func validate() throws {
        if let problem = workload.validate() { throw ValidationError(problem) }
    }
}
