import Conntrack
import Netlink
import Nftables
import ServiceModel

/// The kernel of one network namespace, over one netlink socket: nf_tables through
/// `NftablesClient` and `KernelReader`, conntrack through `ConntrackTable`.
public final class NetlinkKernel: ProxyKernel {
    /// The nf_tables connection; its socket also carries the conntrack requests.
    public let client: NftablesClient
    private let reader: KernelReader
    private let conntrack: ConntrackTable

    /// Opens a netlink socket in the current network namespace, or in the named one.
    public init(networkNamespace: String? = nil) throws(NetlinkError) {
        client = try NftablesClient(networkNamespace: networkNamespace)
        // What the packet path counted is not the sync's business (and costly to dump).
        reader = KernelReader(socket: client.socket, readsCounts: false)
        conntrack = ConntrackTable(socket: client.socket)
    }

    public func generation() throws(NetlinkError) -> UInt32 {
        try client.socket.generationID()
    }

    public func commit(_ transaction: Transaction, expectedGeneration: UInt32?) throws(NetlinkError) {
        try client.commit(transaction, generationID: expectedGeneration)
    }

    public func readTable(_ family: TableFamily, _ name: String) throws(NetlinkError) -> TableReadBack? {
        try reader.read(family, name)
    }

    public func readTable(_ family: TableFamily, _ name: String, trusting trust: ReadBackTrust) throws(NetlinkError)
        -> TableReadBack? {
        try reader.read(family, name, trusting: trust)
    }

    public func readTableCompletely(_ family: TableFamily, _ name: String) throws(NetlinkError) -> TableReadBack? {
        try KernelReader(socket: client.socket, elements: .dumpEverySet).read(family, name)
    }

    public func conntrackFlows(family: IPFamily) throws(NetlinkError) -> [ConntrackFlow] {
        try conntrack.flows(family: family)
    }

    public func deleteConntrackFlows(matching filters: [ConntrackFilter]) throws(NetlinkError) -> Int {
        try conntrack.delete(matching: filters)
    }
}
