import ArgumentParser

/// `nftproxy-bench objects`: a realistic `kubectl get services,endpointslices -A -o json|yaml`.
struct Objects: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write N services x M endpoints as `kubectl get services,endpointslices -A -o json|yaml` prints them.",
        discussion: """
            A v1 List of Services and discovery.k8s.io/v1 EndpointSlices with everything a real \
            cluster returns (uids, resourceVersions, managedFields, last-applied-configuration, \
            ownerReferences, targetRefs, zones, conditions, status); one in 50 services is a \
            NodePort, one in 200 a LoadBalancer. Deterministic: the same options give the same \
            bytes. `nftproxy dump -f FILE --node-name node-0 --cluster-cidr 100.64.0.0/10` reads it. \
            --moved writes the variant in which one endpoint of service N/2 moved to a new pod and address.
            """)

    @Option(help: "Number of services.")
    var services = 1000

    @Option(help: "Ready endpoints per service.")
    var endpoints = 10

    @Option(help: "Spread the endpoints over this many nodes (node-<k mod nodes>); 0: no node names.")
    var nodes = 1000

    @Option(help: "json | yaml")
    var format: RealisticCluster.Format = .json

    @Option(help: "Seed of names, uids and times.")
    var seed: UInt64 = 1

    @Flag(help: "The variant in which one endpoint moved.")
    var moved = false

    func validate() throws {
        let workload = Workload(services: services, endpoints: endpoints, nodes: nodes)
        if let problem = workload.validate() { throw ValidationError(problem) }
    }

    func run() throws {
        let cluster = RealisticCluster(workload: Workload(services: services, endpoints: endpoints, nodes: nodes),
                                       seed: seed, moved: moved)
        cluster.render(format, writeOut)
    }
}

extension RealisticCluster.Format: ExpressibleByArgument {}
