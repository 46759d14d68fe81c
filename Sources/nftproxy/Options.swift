import ArgumentParser
import Foundation
import KubeObjects
import Nftables
import ProxyCompiler
import ServiceModel

/// `-f FILE` inputs: Kubernetes objects as `kubectl get services,endpointslices -A -o yaml|json` prints them.
struct InputOptions: ParsableArguments {
    @Option(name: [.customShort("f"), .long], help: ArgumentHelp(
        "A file of Services and EndpointSlices (YAML or JSON; a List, a stream or single objects); - reads stdin.",
        valueName: "file"))
    var file: [String] = []

    @Option(help: ArgumentHelp("""
        Serve only Services labelled service.kubernetes.io/service-proxy-name=NAME (without it: only Services \
        without that label, as kube-proxy).
        """, valueName: "name"))
    var serviceProxyName: String?

    func validate() throws {
        if file.isEmpty { throw ValidationError("give at least one input with -f FILE (or -f - for stdin)") }
    }
}

/// Facts about the node the ruleset is for.
struct NodeOptions: ParsableArguments {
    @Option(help: "This node's name: endpoints on it are local.")
    var nodeName: String?

    @Option(name: .customLong("node-ip"), help: "A primary address of this node (repeatable); see --nodeport-addresses primary.")
    var nodeIP: [String] = []

    @Option(name: .customLong("cluster-cidr"), help: "A pod network range; traffic from it keeps its source (repeatable).")
    var clusterCIDR: [String] = []

    @Option(name: .customLong("nodeport-addresses"),
            help: ArgumentHelp("""
                Answer NodePorts only on local addresses in this range (repeatable), or `primary`: only on the \
                --node-ip addresses. A family with no range answers on all its local addresses but loopback (the default).
                """, valueName: "cidr|primary"))
    var nodePortAddresses: [String] = []

    @Flag(help: "Masquerade all traffic to services, not only traffic from outside the cluster CIDRs.")
    var masqueradeAll = false

    @Option(help: "Bit of the packet mark that asks for masquerading (0-31).")
    var masqueradeBit = 14

    @Option(help: ArgumentHelp("This node's zone (topology.kubernetes.io/zone): EndpointSlice zone hints for it are followed.",
                               valueName: "zone"))
    var nodeZone: String?

    @Option(help: ArgumentHelp(
        "Count each endpoint's connections, packets and bytes in the kernel (read by `nftproxy stats`); false: no counting (needed below Linux 6.3).",
        valueName: "true|false"))
    var endpointCounters = true

    func nodeConfig() throws -> NodeConfig {
        func parseIP(_ text: String, _ option: String) throws -> IPAddress {
            guard let ip = IPAddress(text) else { throw ValidationError("\(option): \(text) is not an IP address") }
            return ip
        }
        func parseCIDR(_ text: String, _ option: String) throws -> CIDR {
            guard let cidr = CIDR(text) else { throw ValidationError("\(option): \(text) is not a CIDR (address/length)") }
            return cidr
        }
        guard (0...31).contains(masqueradeBit) else {
            throw ValidationError("--masquerade-bit: \(masqueradeBit) is not a bit number (0-31)")
        }
        let nodeIPs = try nodeIP.map { try parseIP($0, "--node-ip") }
        var nodePortRanges: [CIDR] = []
        for text in nodePortAddresses {
            if text == "primary" {
                guard !nodeIPs.isEmpty else {
                    throw ValidationError("--nodeport-addresses primary: give the node's primary addresses with --node-ip")
                }
                nodePortRanges += nodeIPs.map { CIDR(address: $0, prefixLength: $0.bytes.count * 8) }
            } else {
                nodePortRanges.append(try parseCIDR(text, "--nodeport-addresses"))
            }
        }
        var config = NodeConfig(
            nodeName: nodeName,
            nodeIPs: nodeIPs,
            clusterCIDRs: try clusterCIDR.map { try parseCIDR($0, "--cluster-cidr") },
            nodePortAddresses: nodePortRanges,
            masqueradeAll: masqueradeAll,
            masqueradeBit: masqueradeBit,
            endpointCounters: endpointCounters)
        config.zone = nodeZone.flatMap { $0.isEmpty ? nil : $0 }
        return config
    }
}

/// Where to program: the current network namespace, or a named one (`ip netns add NAME`).
struct NamespaceOptions: ParsableArguments {
    @Option(name: .customLong("netns"), help: "Program the named network namespace (/run/netns/NAME) instead of the current one.")
    var networkNamespace: String?
}

/// Reads the inputs into a ServiceMap; prints notices and warnings to stderr and returns the
/// warnings, so that the compiler's report of the same frontend conflicts is not printed twice.
/// Bad input ends the command with status 1 and a message naming the object and field.
func loadServices(_ inputs: InputOptions) throws -> (ServiceMap, warnings: [Diagnostic]) {
    try loadServices(files: inputs.file, serviceProxyName: inputs.serviceProxyName)
}

/// Reads the given files (`-` for stdin) into a ServiceMap, as `loadServices(_:)`.
func loadServices(files: [String], serviceProxyName: String? = nil) throws -> (ServiceMap, warnings: [Diagnostic]) {
    var decoder = KubeObjectDecoder(serviceProxyName: serviceProxyName)
    do {
        for path in files {
            try decoder.add(bytes: InputFile.read(path), source: path == "-" ? "<stdin>" : path)
        }
        let (map, warnings) = try decoder.serviceMap()
        (decoder.notices + warnings).forEach { printError($0.text) }
        return (map, warnings)
    } catch {
        printError("nftproxy: error: \(error)")
        throw ExitCode(1)
    }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
