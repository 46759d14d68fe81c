import Conntrack
import Netlink
import Nftables
import ServiceModel

/// What the engine needs from a node's kernel, and nothing more: the seam between the proxy's
/// logic and netlink.
///
/// `NetlinkKernel` is the real one (nf_tables and conntrack of a network namespace);
/// `FakeKernel` (module ProxyEngineTesting) is an in-memory one with the same rules, so the
/// engine's decisions can be tested without root. Errors are the kernel's, as `NetlinkError`:
/// `.generationChanged` for a stale commit, `.rejected` with the errno for a refused operation.
public protocol ProxyKernel: AnyObject {
    /// The nf_tables ruleset generation: it moves on every commit, by anyone.
    func generation() throws(NetlinkError) -> UInt32

    /// Applies `transaction` as a whole or not at all.
    ///
    /// - Parameter expectedGeneration: when given, the commit is refused with
    ///   `.generationChanged` (and nothing applied) if the generation is not this one any more.
    func commit(_ transaction: Transaction, expectedGeneration: UInt32?) throws(NetlinkError)

    /// One table as the kernel holds it (sets with their declared sizes and elements, chains
    /// with their rules); nil when there is no such table.
    func readTable(_ family: TableFamily, _ name: String) throws(NetlinkError) -> TableReadBack?

    /// `readTable` that also finds what no packet can reach: every set's elements dumped,
    /// none looked up by derived key (slow for large sets; docs/kernel.md). A kernel whose
    /// reads are always complete need not implement it.
    func readTableCompletely(_ family: TableFamily, _ name: String) throws(NetlinkError) -> TableReadBack?

    /// `readTable` that may take the derived maps' elements of frontends whose digests match
    /// from `trust.desired` instead of reading them, when the table's generation stamp equals
    /// `trust.generation` (``TrustedReadBack``; docs/ruleset.md). A kernel that cannot need
    /// not implement it: the default reads everything.
    func readTable(_ family: TableFamily, _ name: String, trusting trust: ReadBackTrust) throws(NetlinkError)
        -> TableReadBack?

    /// The conntrack entries of `family` (TCP, UDP and SCTP ones).
    func conntrackFlows(family: IPFamily) throws(NetlinkError) -> [ConntrackFlow]

    /// Deletes every conntrack entry that matches at least one filter; returns how many went.
    func deleteConntrackFlows(matching filters: [ConntrackFilter]) throws(NetlinkError) -> Int
}

extension ProxyKernel {
    public func readTableCompletely(_ family: TableFamily, _ name: String) throws(NetlinkError) -> TableReadBack? {
        try readTable(family, name)
    }

    public func readTable(_ family: TableFamily, _ name: String, trusting trust: ReadBackTrust) throws(NetlinkError)
        -> TableReadBack? {
        try readTable(family, name)
    }
}
