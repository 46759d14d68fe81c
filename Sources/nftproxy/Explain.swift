import ArgumentParser
import Nftables
import PacketTrace
import ProxyCompiler
import ServiceModel

/// `nftproxy explain`: where does this packet go? Follows one new connection's first packet
/// through the ruleset compiled from the inputs (or read back from the kernel) and says
/// which Service it matches, which endpoints it may reach with which probability, whether
/// its source is masqueraded and why, or why it is refused.
struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Say what the ruleset does with one packet: its Service, endpoints, masquerading or refusal.",
        discussion: """
            The packet is the first of a new connection from --from to --to. Where it enters decides \
            which chains it meets: --from-pod and --from-outside enter at prerouting, --from-node at \
            output; without one, a source inside a --cluster-cidr is a pod, a --node-ip is the node, \
            and anything else is outside. NodePorts answer on the node's own addresses: the --node-ip \
            and --local-address values (and no loopback address, unless --nodeport-addresses says so).
            """)

    @Option(name: [.customShort("f"), .long], help: ArgumentHelp(
        "A file of Services and EndpointSlices (as for apply); - reads stdin. Names the Services with --kernel.",
        valueName: "file"))
    var file: [String] = []

    @Flag(help: "Walk the tables read back from this node's kernel instead of compiling the inputs.")
    var kernel = false

    @OptionGroup var namespace: NamespaceOptions
    @OptionGroup var node: NodeOptions

    @Option(help: ArgumentHelp("The packet's source address, optionally with a port.", valueName: "ip[:port]"))
    var from: String

    @Option(help: ArgumentHelp("The packet's destination.", valueName: "ip:port"))
    var to: String

    @Option(name: .customLong("protocol"), help: "tcp, udp or sctp.")
    var transport = "tcp"

    @Flag(exclusivity: .exclusive, help: "Where the packet enters (default: inferred from --from).")
    var origin: Origin?

    @Option(name: .customLong("local-address"), help: "Another address of the node's own (repeatable).")
    var localAddress: [String] = []

    @Option(name: .customShort("o"), help: "text or json.")
    var output = "text"

    enum Origin: String, EnumerableFlag {
        case fromPod, fromNode, fromOutside

        var packetOrigin: PacketOrigin {
            switch self {
            case .fromPod: return .pod
            case .fromNode: return .node
            case .fromOutside: return .outside
            }
        }
    }

    func validate() throws {
        if file.isEmpty && !kernel { throw ValidationError("give the objects with -f FILE, or --kernel to read this node's tables") }
        if !["text", "json"].contains(output) { throw ValidationError("-o: \(output) is neither text nor json") }
    }

    func run() throws {
        let config = try node.nodeConfig()
        let source = try Self.address(from, option: "--from", portRequired: false).address
        let (destination, port) = try Self.address(to, option: "--to", portRequired: true)
        guard source.family == destination.family else {
            throw ValidationError("--from \(from) and --to \(to) are of different address families")
        }
        guard let protocolValue = TransportProtocol(kubernetes: transport) else {
            throw ValidationError("--protocol: \(transport) is not tcp, udp or sctp")
        }
        var local = Set(config.nodeIPs)
        for text in localAddress {
            guard let address = IPAddress(text) else { throw ValidationError("--local-address: \(text) is not an IP address") }
            local.insert(address)
        }
        let loaded = file.isEmpty ? nil : try loadServices(files: file)
        let services = loaded?.0
        let ruleset: Ruleset
        if kernel {
            ruleset = try readKernelRuleset()
        } else {
            let compilation = Compiler(node: config).compile(services ?? ServiceMap(services: []))
            compilation.warnings.filter { !(loaded?.warnings.contains($0) ?? false) }.forEach { printError($0.text) }
            ruleset = compilation.ruleset
        }
        let entry = origin?.packetOrigin ?? Self.infer(source, node: config, local: local)
        let explanation = PacketExplainer(ruleset: ruleset, node: NodeFacts(localAddresses: local), services: services)
            .explain(Packet(source: source, destination: destination, destinationPort: port ?? 0, transport: protocolValue),
                     from: entry)
        print(output == "json" ? explanation.json : explanation.text)
    }

    /// Our tables as the kernel holds them.
    private func readKernelRuleset() throws -> Ruleset {
        do {
            let client = try NftablesClient(networkNamespace: namespace.networkNamespace)
            let reader = KernelReader(socket: client.socket)
            var tables: [Table] = []
            for family in TableFamily.allCases {
                guard let readBack = try reader.read(family, RulesetLayout.tableName) else { continue }
                if !readBack.untrustedChains.isEmpty || !readBack.unreadableSets.isEmpty {
                    printError("warning: table \(readBack.table.qualifiedName): not understood and left out: "
                               + (readBack.untrustedChains.sorted().map { "chain \($0)" }
                                  + readBack.unreadableSets.sorted().map { "set \($0)" }).joined(separator: ", "))
                }
                tables.append(readBack.table)
            }
            if tables.isEmpty { printError("warning: the kernel holds no nftproxy table: nothing translates packets") }
            return Ruleset(tables: tables)
        } catch {
            printError("nftproxy: error: reading the kernel's tables: \(error)")
            throw ExitCode(1)
        }
    }

    /// A pod when the source is in a cluster CIDR, the node when it is one of its
    /// addresses, otherwise outside.
    static func infer(_ source: IPAddress, node: NodeConfig, local: Set<IPAddress>) -> PacketOrigin {
        if local.contains(source) || source.isLoopback { return .node }
        if node.clusterCIDRs.contains(where: { $0.contains(source) }) { return .pod }
        return .outside
    }

    /// `ip`, `ip:port`, `[ipv6]:port` or a bare IPv6 address.
    static func address(_ text: String, option: String, portRequired: Bool) throws -> (address: IPAddress, port: UInt16?) {
        var host = Substring(text)
        var portText: Substring?
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if rest.hasPrefix(":") { portText = rest.dropFirst() } else if !rest.isEmpty { host = "" }
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.lastIndex(of: ":") {
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard let address = IPAddress(String(host)) else {
            throw ValidationError("\(option): \(text) is not an address\(portRequired ? " with a port (ip:port, [ipv6]:port)" : "")")
        }
        guard let portText else {
            if portRequired { throw ValidationError("\(option): \(text) has no port (ip:port, [ipv6]:port)") }
            return (address, nil)
        }
        guard let port = UInt16(portText), port > 0 else {
            throw ValidationError("\(option): \(portText) is not a port (1-65535)")
        }
        return (address, port)
    }
}
