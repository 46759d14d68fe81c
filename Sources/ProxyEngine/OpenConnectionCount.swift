import Conntrack
import Netlink
import ProxyCompiler
import ServiceModel

extension NetlinkKernel {
    /// The connections conntrack holds open now (``ConntrackFlow/isOpen``) that were DNATed
    /// from one of `frontends`, per frontend and endpoint, both families: one conntrack dump
    /// each (what `nftproxy stats` and the endpoint metrics show next to the totals).
    public func openConnections(to frontends: Set<ProgrammedFrontend.Key>) throws(NetlinkError) -> OpenConnections {
        var open = OpenConnections()
        for family in [IPFamily.v4, .v6] where frontends.contains(where: { $0.family == family }) {
            for flow in try conntrackFlows(family: family) { open.count(flow, frontends: frontends) }
        }
        return open
    }
}

extension OpenConnections {
    /// Counts `flow` if it is open and its destination was translated: on its frontend (the
    /// original destination), towards its endpoint (the reply's source).
    mutating func count(_ flow: ConntrackFlow, frontends: Set<ProgrammedFrontend.Key>) {
        guard flow.isDestinationNAT, flow.isOpen else { return }
        count(address: flow.original.destination, transport: flow.transport, port: flow.original.destinationPort,
              endpoint: ProgrammedFrontend.Target(address: flow.reply.source, port: flow.reply.sourcePort),
              frontends: frontends)
    }
}
