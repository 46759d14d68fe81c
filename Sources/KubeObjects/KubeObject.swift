import Foundation
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
    /// When the control plane saw the change this version carries (the slice's
    /// `endpoints.kubernetes.io/last-change-trigger-time`), for the network programming latency.
    public var lastChangeTriggerTime: Date? { slice?.lastChangeTriggerTime }
    /// Number of endpoints read from the slice.
    public var endpointCount: Int { slice?.endpoints.count ?? 0 }

    var key: String { "\(namespace)/\(name)" }
}

extension KubeObject {
    /// The public value of what a Collector found.
    init(_ found: Collector.Found) {
        switch found {
        case .service(let name, let service):
            self = .service(name, service)
        case .slice(let key, let slice):
            let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
            self = .endpointSlice(EndpointSliceObject(namespace: parts.first ?? "", name: parts.last ?? "", slice: slice))
        }
    }
}

/// The objects of one input (one object, one page of a List, or a stream), in input order,
/// with the notices about what was skipped.
public struct DecodedObjects: Sendable {
    public var objects: [KubeObject]
    /// One per object skipped.
    public var notices: [Diagnostic]
}

extension KubeObjectDecoder {
    /// Decodes one input (JSON or YAML bytes: an object, a List page, a stream) without recording
    /// it; the checks and errors are those of ``add(bytes:source:)``. `serviceProxyName`
    /// selects the Services decoded, as ``serviceProxyName`` does; the others are notices.
    public static func decode(bytes: UnsafeBufferPointer<UInt8>, source: String,
                              serviceProxyName: String? = nil) throws(InputError) -> DecodedObjects {
        let stream = ItemStream(source: source, serviceProxyName: serviceProxyName)
        let (documents, itemsStreamed) = try DocumentParser.parse(bytes, source: source, itemSink: stream.take)
        var collector = Collector(source: source, serviceProxyName: serviceProxyName)
        if itemsStreamed, let document = documents.first {
            try collector.collect(document, location: "document 1", streamed: stream)
        } else {
            for (index, document) in documents.enumerated() {
                try collector.collect(document, location: "document \(index + 1)")
            }
        }
        return DecodedObjects(objects: collector.found.map(KubeObject.init), notices: collector.notices)
    }

    /// Decodes one object that may lack `apiVersion` and `kind`, as the items of an API
    /// server's list responses do: `apiVersion` and `kind` stand in for the missing fields.
    /// `serviceProxyName` selects the Services decoded, as ``serviceProxyName`` does.
    public static func decodeObject(bytes: UnsafeBufferPointer<UInt8>, source: String, apiVersion: String, kind: String,
                                    serviceProxyName: String? = nil) throws(InputError) -> DecodedObjects {
        let (documents, _) = try DocumentParser.parse(bytes, source: source, itemSink: nil)
        var collector = Collector(source: source, serviceProxyName: serviceProxyName)
        for (index, document) in documents.enumerated() {
            try collector.collect(document, location: "document \(index + 1)",
                                  inferred: (apiVersion: apiVersion, kind: kind))
        }
        return DecodedObjects(objects: collector.found.map(KubeObject.init), notices: collector.notices)
    }

    /// ``decodeObject(bytes:source:apiVersion:kind:serviceProxyName:)`` of bytes in an array
    /// or a slice of one (an item of a list page, without copying it).
    public static func decodeObject<Bytes: RandomAccessCollection<UInt8>>(
        bytes: Bytes, source: String, apiVersion: String, kind: String,
        serviceProxyName: String? = nil) throws(InputError) -> DecodedObjects {
        let outcome: Result<DecodedObjects, InputError>? = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(InputError) in
                try decodeObject(bytes: buffer, source: source, apiVersion: apiVersion, kind: kind,
                                 serviceProxyName: serviceProxyName)
            }
        }
        if let outcome { return try outcome.get() }
        return try decodeObject(bytes: Array(bytes), source: source, apiVersion: apiVersion, kind: kind,
                                serviceProxyName: serviceProxyName)
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

/// Decodes the items of a big List (JSON, or the first YAML document) while it is parsed, so that their values need not be
/// held at once. An item that carries its own `kind` and `apiVersion` is decoded at once (its
/// List's kind cannot change it); from the first item that does not, items are kept for
/// ``Collector`` to decode once the List's kind is known. The first error is kept, and reported
/// only if the input turns out to be a List without syntax errors, as without streaming.
final class ItemStream {
    var collector: Collector
    var pending: [(index: Int, value: Value)] = []
    var error: InputError?

    init(source: String, serviceProxyName: String? = nil) {
        collector = Collector(source: source, serviceProxyName: serviceProxyName)
    }

    func take(_ value: Value, index: Int) {
        guard error == nil else { return }
        guard pending.isEmpty, case .map(let members) = value,
              case .string(let kind)? = members["kind"], !kind.isEmpty,
              case .string(let apiVersion)? = members["apiVersion"], !apiVersion.isEmpty else {
            pending.append((index, value))
            return
        }
        do {
            try collector.collect(value, location: "document 1, items[\(index)]")
        } catch {
            self.error = error
        }
    }
}
