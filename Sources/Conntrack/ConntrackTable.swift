import Netlink
import ServiceModel

#if canImport(Glibc)
import Glibc
#endif

/// The connection tracking table of one network namespace, read and pruned over
/// nfnetlink_conntrack (`NFNL_SUBSYS_CTNETLINK`), with no `conntrack` binary.
///
/// nftproxy uses it like kube-proxy uses `conntrack -D`: when a UDP (or SCTP)
/// endpoint goes away, entries that still DNAT clients to it are deleted, so that the
/// next datagram is balanced again instead of being sent to an endpoint that is gone.
///
/// ```swift
/// let table = ConntrackTable(socket: try NetlinkSocket(namespace: namespace))
/// let deleted = try table.delete(matching: [
///     ConntrackFilter(family: .v4, transport: .udp,
///                     originalDestination: clusterIP, originalDestinationPort: 53,
///                     replySource: staleEndpoint, replySourcePort: 5353),
/// ])
/// ```
///
/// Listing dumps the table once per address family and matches in user space; a
/// delete then removes each matching entry by its original tuple (and kernel ID),
/// many requests per datagram. Both are linear in the size of the table, and the
/// number of filters only adds a constant number of hash lookups per entry (see
/// ``delete(matching:)``). Deleting needs `CAP_NET_ADMIN` in the socket's namespace.
///
/// Like its socket, a table handles one call at a time: it is not `Sendable`.
public final class ConntrackTable {
    /// The `NETLINK_NETFILTER` socket, bound to the namespace whose table this is.
    public let socket: NetlinkSocket

    /// A table reached through `socket`, a `NETLINK_NETFILTER` socket (the same kind
    /// nf_tables uses, and it can be the same socket); its namespace is the one the
    /// socket was opened in (see ``NetlinkSocket/init(namespace:)``).
    public init(socket: NetlinkSocket) {
        self.socket = socket
    }

    /// The entries of `family`, optionally only those of `transport`, in the order the
    /// kernel listed them (`IPCTNL_MSG_CT_GET` dump).
    ///
    /// Entries of protocols other than TCP, UDP and SCTP (ICMP, GRE, …) are not
    /// listed. The dump is not a snapshot: entries created or removed while it runs may
    /// or may not appear. An entry the kernel reports twice (it may, when its hash
    /// bucket changes during the dump) is listed once.
    ///
    /// - Throws: ``NetlinkError/rejected(operation:errno:kernelMessage:)`` when the
    ///   kernel refuses the dump, ``NetlinkError/malformed(_:)`` for an entry that
    ///   cannot be parsed, and transport errors.
    public func flows(family: IPFamily, transport: TransportProtocol? = nil) throws(NetlinkError) -> [ConntrackFlow] {
        var flows: [ConntrackFlow] = []
        try forEachFlow(family: family) { flow in
            if transport == nil || flow.transport == transport { flows.append(flow) }
        }
        return flows
    }

    /// Deletes every entry that matches at least one of `filters`, and returns how
    /// many the kernel deleted.
    ///
    /// The table of each family that some filter names is dumped once; each entry is
    /// matched against all filters with a few hash lookups (filters are indexed by
    /// which fields they set), so the cost is linear in the size of the table plus the
    /// number of filters. Matching entries are then deleted as by ``delete(_:)``.
    /// Entries that vanished in the meantime (`ENOENT`) are not errors and are not
    /// counted. No filters: nothing is dumped, 0 is returned.
    ///
    /// - Throws: Whatever ``flows(family:transport:)`` and ``delete(_:)`` throw.
    public func delete(matching filters: [ConntrackFilter]) throws(NetlinkError) -> Int {
        var victims: [ConntrackFlow] = []
        for family in IPFamily.allCases {
            let index = ConntrackFilterIndex(family: family, filters: filters)
            guard !index.isEmpty else { continue }
            try forEachFlow(family: family) { flow in
                if index.matches(flow) { victims.append(flow) }
            }
        }
        return try delete(victims)
    }

    /// Deletes the given entries (`IPCTNL_MSG_CT_DELETE` with each one's original
    /// tuple, zone and, when known, kernel ID), and returns how many the kernel deleted.
    ///
    /// The requests go out many per datagram (``NetlinkSocket/perform(_:)``). Entries
    /// that no longer exist, or were replaced by a new entry with the same tuple
    /// (different ID), are answered with `ENOENT`: not an error, and not counted.
    /// Duplicates in `flows` are deleted once.
    ///
    /// - Throws: ``NetlinkError/rejected(operation:errno:kernelMessage:)`` for the first
    ///   entry the kernel refused to delete for another reason (such as `EPERM`); all
    ///   other entries were still attempted. A flow whose original tuple mixes IPv4 and
    ///   IPv6 addresses is refused this way (`EINVAL`) before anything is sent.
    ///   Transport errors as ``NetlinkSocket/perform(_:)`` throws them.
    public func delete(_ flows: [ConntrackFlow]) throws(NetlinkError) -> Int {
        var seen = Set<FlowKey>()
        var unique: [ConntrackFlow] = []
        unique.reserveCapacity(flows.count)
        for flow in flows where seen.insert(FlowKey(flow)).inserted {
            guard flow.original.source.family == flow.original.destination.family else {
                throw .rejected(operation: "delete conntrack entry \(flow)", errno: EINVAL, kernelMessage: nil)
            }
            unique.append(flow)
        }
        guard !unique.isEmpty else { return 0 }

        var requests = NetlinkRequestList()
        for flow in unique {
            requests.append(
                subsystem: .conntrack, type: ConntrackMessage.deleteEntry,
                family: ConntrackMessage.netfilterFamily(flow.family)
            ) { message in
                ConntrackMessage.putDeleteAttributes(flow, into: message)
            }
        }
        let outcomes = try socket.perform(requests)

        var deleted = 0
        var refusal: (flow: ConntrackFlow, outcome: NetlinkRequestOutcome)?
        for (flow, outcome) in zip(unique, outcomes) {
            if outcome.succeeded {
                deleted += 1
            } else if outcome.errno != ENOENT, refusal == nil {
                refusal = (flow, outcome)
            }
        }
        if let refusal {
            throw .rejected(
                operation: "delete conntrack entry \(refusal.flow)",
                errno: refusal.outcome.errno,
                kernelMessage: refusal.outcome.kernelMessage)
        }
        return deleted
    }

    // MARK: Dumping

    /// What identifies an entry within one table: a second entry with the same
    /// original tuple in the same zone cannot exist at the same time.
    private struct FlowKey: Hashable {
        var transport: TransportProtocol
        var original: FlowTuple
        var zone: UInt16

        init(_ flow: ConntrackFlow) {
            transport = flow.transport
            original = flow.original
            zone = flow.zone
        }
    }

    /// Dumps the entries of `family` and calls `body` with each TCP, UDP and SCTP one,
    /// once per entry.
    func forEachFlow(family: IPFamily, _ body: (ConntrackFlow) -> Void) throws(NetlinkError) {
        var seen = Set<FlowKey>()
        try socket.dump(
            subsystem: .conntrack, type: ConntrackMessage.getEntries,
            family: ConntrackMessage.netfilterFamily(family)
        ) { message in
            guard let flow = try ConntrackMessage.flow(from: message, family: family) else { return }
            if seen.insert(FlowKey(flow)).inserted { body(flow) }
        }
    }
}
