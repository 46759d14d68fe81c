import ServiceModel

/// One Service or EndpointSlice decoded on its own: what the API client gets for each object of
/// a list page or watch event, checked exactly as `nftproxy -f` input is.
public enum KubeObject: Sendable {
    /// A Service, or nil when it is valid but not served (the notice says why).
    case service(ServiceName, Service?)
    /// An EndpointSlice.
    case endpointSlice(EndpointSliceObject)
}

/// A decoded EndpointSlice, kept whole for ``KubeObjectDecoder/set(_:source:)``.
public struct EndpointSliceObject: Sendable {
    /// Namespace and name of the slice.
    public let namespace: String
    public let name: String
    /// nil when the slice is valid but unusable (FQDN, no service label; the notice says why).
    let slice: EndpointSlice?

    /// The Service the slice belongs to; nil when the slice is not used.
    public var service: ServiceName? { slice?.service }
    /// Number of endpoints read from the slice.
    public var endpointCount: Int { slice?.endpoints.count ?? 0 }

    var key: String { "\(namespace)/\(name)" }
}

/// The objects of one input (one object, one page of a List, or a stream), in input order,
/// with the notices about what was skipped.
public struct DecodedObjects: Sendable {
    public var objects: [KubeObject]
    public var notices: [String]
}

extension KubeObjectDecoder {
    /// Decodes one input (JSON or YAML bytes: an object, a List page, a stream) without recording
    /// it; the checks and errors are those of ``add(bytes:source:)``. `serviceProxyName`
    /// selects the Services decoded, as ``serviceProxyName`` does; the others are notices.
    public static func decode(bytes: UnsafeBufferPointer<UInt8>, source: String,
                              serviceProxyName: String? = nil) throws(InputError) -> DecodedObjects {
        let documents = try DocumentParser.parse(bytes, source: source)
        var collector = Collector(source: source, serviceProxyName: serviceProxyName)
        for (index, document) in documents.enumerated() {
            try collector.collect(document, location: documents.count > 1 ? "document \(index + 1)" : nil)
        }
        let objects = collector.found.map { found -> KubeObject in
            switch found {
            case .service(let name, let service):
                return .service(name, service)
            case .slice(let key, let slice):
                let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
                return .endpointSlice(EndpointSliceObject(namespace: parts.first ?? "", name: parts.last ?? "", slice: slice))
            }
        }
        return DecodedObjects(objects: objects, notices: collector.notices)
    }

    /// ``decode(bytes:source:)`` of an array.
    public static func decode(bytes: [UInt8], source: String, serviceProxyName: String? = nil) throws(InputError) -> DecodedObjects {
        var outcome: Result<DecodedObjects, InputError> = .success(DecodedObjects(objects: [], notices: []))
        bytes.withUnsafeBufferPointer { buffer in
            outcome = Result { () throws(InputError) in
                try decode(bytes: buffer, source: source, serviceProxyName: serviceProxyName)
            }
        }
        return try outcome.get()
    }
}
