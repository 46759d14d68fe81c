import Nftables
import ServiceModel

/// The LoadBalancer IP and port a `source-ranges` element allows sources for: its first
/// two fields. Frontends that share them (the protocols of one port, or services sharing
/// an LB IP) share the group's ranges: the kernel cannot hold overlapping ranges, so a
/// group holds the outermost of all of them (docs/ruleset.md).
struct SourceRangeGroup: Hashable {
    var address: IPAddress
    var port: UInt16
}

extension FamilyCompiler {
    /// The group and ranges a LoadBalancer IP frontend with loadBalancerSourceRanges allows:
    /// its ranges, and the LB IP itself when a range holds one of the node's addresses (the
    /// node's own traffic to a VIP it holds arrives from the VIP, as in kube-proxy). nil for
    /// other frontends and for frontends without endpoints (refused anyway).
    func sourceRangeClaims(for frontend: Frontend) -> (group: SourceRangeGroup, ranges: Set<CIDR>)? {
        guard let address = frontend.address, !frontend.sourceRanges.isEmpty, !frontend.endpoints.isEmpty else { return nil }
        var ranges = Set(frontend.sourceRanges)
        if ranges.contains(where: { range in node.nodeIPs.contains { range.contains($0) } }) {
            ranges.insert(CIDR(address: address, prefixLength: address.bytes.count * 8))
        }
        return (SourceRangeGroup(address: address, port: frontend.port), ranges)
    }

    /// The `source-ranges` elements of a group: its ranges that lie inside no other one,
    /// in address order.
    static func sourceRangeElements(_ group: SourceRangeGroup, _ ranges: some Collection<CIDR>) -> [SetElement] {
        let outermost = ranges.filter { range in
            !ranges.contains { other in other != range && other.prefixLength <= range.prefixLength && other.contains(range.address) }
        }
        return outermost.sorted { ($0.address, $0.prefixLength) < ($1.address, $1.prefixLength) }.map { range in
            SetElement(key: [.address(group.address), .port(group.port), .address(range.address)],
                       keyEnd: [.address(group.address), .port(group.port), .address(range.lastAddress)])
        }
    }
}
