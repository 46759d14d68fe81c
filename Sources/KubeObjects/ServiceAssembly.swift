import ServiceModel

extension KubeObjectDecoder {
    /// One Service with the endpoints of its EndpointSlices attached, exactly as
    /// ``serviceMap()`` attaches them, for a caller that keeps the objects itself and
    /// re-assembles only the services that changed (the daemon's watch caches).
    ///
    /// Its own repeated addresses are folded as there. Conflicts with other services'
    /// frontends are not resolved here: the engine resolves them when it compiles, by the
    /// same rule (the service whose name sorts first keeps a frontend).
    ///
    /// - Parameter slices: the slices that belong to `service` (others are ignored).
    public static func assemble(_ service: Service, slices: [EndpointSliceObject]) -> Service {
        let own = slices.filter { $0.service == service.name }.sorted { $0.key < $1.key }.compactMap(\.slice)
        var assembly = Assembly(services: [service], slices: own)
        assembly.attachAllEndpoints()
        assembly.foldOwnAddresses()
        return assembly.services.first ?? service
    }
}
