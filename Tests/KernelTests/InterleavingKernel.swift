import Conntrack
import Netlink
import Nftables
import ProxyEngine
import ServiceModel

/// A `NetlinkKernel` that runs `beforeNextCommit` once, just before its next commit is sent:
/// where a kernel test lets another writer in between an engine's planning and its commit.
final class InterleavingKernel: ProxyKernel {
    private let kernel: NetlinkKernel
    var beforeNextCommit: (() -> Void)?

    init(_ kernel: NetlinkKernel) { self.kernel = kernel }

    func generation() throws(NetlinkError) -> UInt32 { try kernel.generation() }

    func commit(_ transaction: Transaction, expectedGeneration: UInt32?) throws(NetlinkError) {
        if let writer = beforeNextCommit {
            beforeNextCommit = nil
            writer()
        }
        try kernel.commit(transaction, expectedGeneration: expectedGeneration)
    }

    func readTable(_ family: TableFamily, _ name: String) throws(NetlinkError) -> TableReadBack? {
        try kernel.readTable(family, name)
    }

    func conntrackFlows(family: IPFamily) throws(NetlinkError) -> [ConntrackFlow] {
        try kernel.conntrackFlows(family: family)
    }

    func deleteConntrackFlows(matching filters: [ConntrackFilter]) throws(NetlinkError) -> Int {
        try kernel.deleteConntrackFlows(matching: filters)
    }
}
