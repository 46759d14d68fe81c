import ServiceModel

/// Topology-aware routing, as kube-proxy does it: the EndpointSlice controller writes hints
/// (for Services with `trafficDistribution: PreferClose` / `PreferSameZone` /
/// `PreferSameNode`, or the topology-mode annotation), and the proxy follows them for the
/// cluster-wide endpoint list. Hints are used only when every ready endpoint carries one
/// and at least one is for this node (node hints) or its zone (zone hints); otherwise
/// every endpoint is used. The lists of the traffic policies Local are not filtered.
func preferringClose(_ endpoints: [Endpoint], node: String?, zone: String?) -> [Endpoint] {
    // Hints apply to ready endpoints; a fallback list of terminating ones is used whole.
    guard !endpoints.isEmpty, endpoints.allSatisfy(\.ready) else { return endpoints }
    if let node, endpoints.allSatisfy({ !$0.nodeHints.isEmpty }) {
        let hinted = endpoints.filter { $0.nodeHints.contains(node) }
        if !hinted.isEmpty { return hinted }
    }
    if let zone, endpoints.allSatisfy({ !$0.zoneHints.isEmpty }) {
        let hinted = endpoints.filter { $0.zoneHints.contains(zone) }
        if !hinted.isEmpty { return hinted }
    }
    return endpoints
}
