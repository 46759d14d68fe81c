import ArgumentParser
import Nftables
import ProxyCompiler

/// `nftproxy-bench generate`: the workload as our nft dump, as kube-proxy's layout, or as YAML.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the workload to stdout: our nft dump, upstream kube-proxy's nftables layout, or Kubernetes YAML.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        /// The compiled ruleset as `nftproxy dump` writes it (baseline a).
        case nftproxy
        /// kube-proxy's layout: chain per service, inline `numgen random mod N` dnat map (baseline b).
        case kubeProxy = "kube-proxy"
        /// kube-proxy's layout with a chain per endpoint behind an inline numgen vmap.
        case kubeProxyEndpointChains = "kube-proxy-endpoint-chains"
        /// Services and EndpointSlices, for `nftproxy dump -f` / `apply -f`.
        case yaml
    }

    @OptionGroup var options: WorkloadOptions

    @Option(help: "nftproxy | kube-proxy | kube-proxy-endpoint-chains | yaml")
    var format: Format = .nftproxy

    func run() throws {
        let workload = options.workload
        switch format {
        case .nftproxy:
            let compilation = Compiler(node: workload.node).compile(workload.serviceMap())
            for warning in compilation.warnings { printErr("warning: \(warning)") }
            writeOut(ScriptRenderer().render(compilation.ruleset))
        case .kubeProxy:
            KubeProxyLayout(workload: workload, shape: .dnatMap).render(writeOut)
        case .kubeProxyEndpointChains:
            KubeProxyLayout(workload: workload, shape: .endpointChains).render(writeOut)
        case .yaml:
            KubernetesYAML(workload: workload).render(writeOut)
        }
    }
}
