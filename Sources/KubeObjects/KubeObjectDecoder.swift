import ServiceModel

/// Collects Kubernetes Services and EndpointSlices from `kubectl get services,endpointslices
/// -A -o yaml` (or `-o json`) output and builds the ``ServiceModel/ServiceMap`` they describe.
///
/// Each input may be JSON or YAML, a single object, a `List`, or a `---` separated stream of
/// any of these. Objects of other kinds, and Services or EndpointSlices the proxy does not
/// serve (ExternalName, headless, other proxies', FQDN slices), are skipped with a notice
/// (a ``ServiceModel/Diagnostic`` in ``notices``). An object Kubernetes would reject makes ``add(contents:source:)`` throw; the objects of
/// that input are then not added.
///
/// ```swift
/// var decoder = KubeObjectDecoder()
/// try decoder.add(contents: text, source: "cluster.yaml")
/// let (map, warnings) = try decoder.serviceMap()
/// ```
public struct KubeObjectDecoder: Sendable {
    /// A definition together with the input it came from; nil value: skipped.
    private struct Definition<Payload: Sendable>: Sendable {
        var source: String
        var value: Payload?
    }

    private var services: [ServiceName: Definition<Service>] = [:]
    /// Keyed by `namespace/name` of the slice.
    private var slices: [String: Definition<EndpointSlice>] = [:]
    /// Warnings about objects defined more than once, in the order found.
    private var redefinitions: [Diagnostic] = []

    /// One notice per skipped object, in input order; the message reads e.g.
    /// `cluster.yaml: skipping apps/v1 Deployment default/echo (not a Service or EndpointSlice)`.
    public private(set) var notices: [Diagnostic] = []

    /// With a name: only Services labelled `service.kubernetes.io/service-proxy-name` with
    /// it are served (as by an alternative proxy started with `--service-proxy-name`). nil:
    /// only Services without that label (kube-proxy's default).
    public var serviceProxyName: String?

    /// Creates an empty decoder; `serviceProxyName` selects the Services it serves.
    public init(serviceProxyName: String? = nil) { self.serviceProxyName = serviceProxyName }

    /// Parses one input (JSON or YAML) and records the Services and EndpointSlices in it.
    ///
    /// - Parameters:
    ///   - contents: the text of the input.
    ///   - source: its display name (a path, or `<stdin>`), used in notices and errors.
    /// - Throws: ``InputError`` for a syntax error or an invalid object; nothing of this input
    ///   is kept then.
    public mutating func add(contents: String, source: String) throws(InputError) {
        var text = contents
        var outcome: Result<Void, InputError> = .success(())
        text.withUTF8 { bytes in
            outcome = Result { () throws(InputError) in try add(bytes: bytes, source: source) }
        }
        try outcome.get()
    }

    /// Parses one input (JSON or YAML) given as bytes and records the Services and
    /// EndpointSlices in it; the same as ``add(contents:source:)`` without a `String` of the
    /// whole input. Invalid UTF-8 is an error.
    public mutating func add(bytes: [UInt8], source: String) throws(InputError) {
        var outcome: Result<Void, InputError> = .success(())
        bytes.withUnsafeBufferPointer { buffer in
            outcome = Result { () throws(InputError) in try add(bytes: buffer, source: source) }
        }
        try outcome.get()
    }

    /// Parses one input (JSON or YAML) from a byte buffer, which is only read during the call;
    /// see ``add(contents:source:)``.
    public mutating func add(bytes: UnsafeBufferPointer<UInt8>, source: String) throws(InputError) {
        let decoded = try Self.decode(bytes: bytes, source: source, serviceProxyName: serviceProxyName)
        notices += decoded.notices
        for object in decoded.objects {
            switch object {
            case .service(let name, _):
                if let previous = services[name] {
                    redefinitions.append(Diagnostic(
                        .warning, .redefinedObject, object: .service(name, source: source),
                        related: .service(name, source: previous.source),
                        message: "Service \(name) is defined again in \(source) (first in \(previous.source)); the later definition wins"))
                }
            case .endpointSlice(let slice):
                if let previous = slices[slice.key] {
                    func object(_ source: String) -> DiagnosticObject {
                        DiagnosticObject(kind: "EndpointSlice", namespace: slice.namespace, name: slice.name, source: source)
                    }
                    redefinitions.append(Diagnostic(
                        .warning, .redefinedObject, object: object(source), related: object(previous.source),
                        message: "EndpointSlice \(slice.key) is defined again in \(source) (first in \(previous.source)); the later definition wins"))
                }
            }
            set(object, source: source)
        }
    }

    /// Records `object` (from ``decode(bytes:source:)``), replacing any earlier definition of
    /// the same object without a warning, as a watch event replaces it.
    public mutating func set(_ object: KubeObject, source: String) {
        switch object {
        case .service(let name, let service):
            services[name] = Definition(source: source, value: service)
        case .endpointSlice(let slice):
            slices[slice.key] = Definition(source: source, value: slice.slice)
        }
    }

    /// Forgets the Service `name` (a watch event deleted it).
    public mutating func removeService(_ name: ServiceName) {
        services[name] = nil
    }

    /// Forgets the EndpointSlice `namespace/name` (a watch event deleted it).
    public mutating func removeEndpointSlice(namespace: String, name: String) {
        slices["\(namespace)/\(name)"] = nil
    }

    /// Builds the ServiceMap from everything added so far.
    ///
    /// Endpoints are attached to service ports by (port name, protocol), deduplicated and
    /// sorted. A frontend (address, protocol, port) or NodePort claimed by two services is
    /// reported with a warning naming the service that keeps it, by the rule of
    /// ``ServiceModel/FrontendClaims`` that the compiler applies; the map keeps both claims.
    ///
    /// - Returns: the map, and warnings (redefined objects, conflicts) in a stable order.
    public func serviceMap() throws(InputError) -> (ServiceMap, warnings: [Diagnostic]) {
        let served = services.values.compactMap(\.value)
        let usable = slices.keys.sorted().compactMap { slices[$0]?.value }
        var assembly = Assembly(services: served, slices: usable)
        assembly.run()
        return (ServiceMap(services: assembly.services), warnings: redefinitions + assembly.warnings)
    }
}

/// Walks the documents of one input, decoding each object found.
struct Collector {
    enum Found {
        case service(ServiceName, Service?)
        case slice(String, EndpointSlice?)
    }

    let source: String
    /// Selects the Services decoded (see `KubeObjectDecoder.serviceProxyName`).
    var serviceProxyName: String? = nil
    var found: [Found] = []
    var notices: [Diagnostic] = []

    /// Decodes `value`, a Kubernetes object or list. `inferred` is the (apiVersion, kind) of the
    /// items of a typed list such as `ServiceList`, whose items may omit them.
    ///
    /// `location` names the document (and List item) for messages; `streamed`: the items of
    /// `value`, a List whose items were handed over while parsing.
    mutating func collect(_ value: Value, location: String,
                          inferred: (apiVersion: String, kind: String)? = nil,
                          streamed: ItemStream? = nil) throws(InputError) {
        guard case .map = value else {
            throw InputError(source: source, document: location, problem:
                                "expected a Kubernetes object, found \(value.kindDescription)")
        }
        let anonymous = ObjectRef(source: source, kind: inferred?.kind ?? "object", location: location)
        let root = Field(root: value, owner: anonymous)
        guard let kind = try nonEmptyString(root.field("kind")) ?? inferred?.kind else {
            throw InputError(source: source, document: location, field: "kind",
                             problem: "missing (not a Kubernetes object)")
        }
        let typedRoot = Field(root: value, owner: ObjectRef(source: source, kind: kind, location: location))
        guard let apiVersion = try nonEmptyString(typedRoot.field("apiVersion")) ?? inferred?.apiVersion else {
            throw try typedRoot.field("apiVersion").fail("missing")
        }

        if kind.hasSuffix("List"), case .map(let members) = value, members["items"] != nil {
            let itemType = kind == "List" ? nil : (apiVersion, String(kind.dropLast(4)))
            if let streamed {
                if let error = streamed.error { throw error }
                found += streamed.collector.found
                notices += streamed.collector.notices
                for (index, itemValue) in streamed.pending {
                    try collect(itemValue, location: "\(location), items[\(index)]", inferred: itemType)
                }
                return
            }
            for item in try typedRoot.field("items").elements() {
                // item.path is "items[3]"
                let itemLocation = "\(location), \(item.path)"
                guard let itemValue = item.value else { continue }
                try collect(itemValue, location: itemLocation, inferred: itemType)
            }
            return
        }

        switch (apiVersion, kind) {
        case ("v1", "Service"):
            let (namespace, name, root) = try identify(typedRoot, kind: kind, location: location)
            let serviceName = ServiceName(namespace: namespace, name: name)
            switch try ServiceDecoder.decode(root, name: serviceName, proxyName: serviceProxyName) {
            case .served(let service):
                found.append(.service(serviceName, service))
            case .skipped(_, let reason):
                found.append(.service(serviceName, nil))
                notices.append(Diagnostic(.notice, reason.code, object: .service(serviceName, source: source, document: location),
                                          field: reason.field,
                                          message: "\(source): skipping Service \(serviceName) (\(reason.text))"))
            }
        case ("discovery.k8s.io/v1", "EndpointSlice"):
            let (namespace, name, root) = try identify(typedRoot, kind: kind, location: location)
            let key = "\(namespace)/\(name)"
            switch try EndpointSliceDecoder.decode(root, namespace: namespace, name: name) {
            case .slice(let slice):
                found.append(.slice(key, slice))
            case .skipped(let reason):
                found.append(.slice(key, nil))
                let object = DiagnosticObject(kind: kind, namespace: namespace, name: name, source: source, document: location)
                notices.append(Diagnostic(.notice, reason.code, object: object, field: reason.field,
                                          message: "\(source): skipping EndpointSlice \(key) (\(reason.text))"))
            }
        default:
            let metadata = try? typedRoot.field("metadata")
            let namespace = (try? metadata?.field("namespace").optionalString()).flatMap { $0 }
            let name = (try? metadata?.field("name").optionalString()).flatMap { $0 }
            var what = "\(apiVersion) \(kind)"
            if let name, !name.isEmpty {
                what += " " + ((namespace?.isEmpty ?? true) ? name : "\(namespace ?? "")/\(name)")
            } else {
                what += " at \(location)"
            }
            let reason = switch kind {
            case "Service": SkipReason(.unsupportedAPIVersion, field: "apiVersion", "only v1 Services are read")
            case "EndpointSlice": SkipReason(.unsupportedAPIVersion, field: "apiVersion",
                                             "only discovery.k8s.io/v1 EndpointSlices are read")
            default: SkipReason(.skippedKind, field: nil, "not a Service or EndpointSlice")
            }
            let object = DiagnosticObject(kind: kind, apiVersion: apiVersion, namespace: namespace.flatMap { $0.isEmpty ? nil : $0 },
                                          name: name.flatMap { $0.isEmpty ? nil : $0 }, source: source, document: location)
            notices.append(Diagnostic(.notice, reason.code, object: object, field: reason.field,
                                      message: "\(source): skipping \(what) (\(reason.text))"))
        }
    }

    /// Reads `metadata.namespace` (default `default`) and `metadata.name`, and returns the root
    /// again with an owner that names the object for later errors.
    private func identify(_ root: Field, kind: String, location: String)
        throws(InputError) -> (namespace: String, name: String, root: Field) {
        let metadata = try root.field("metadata")
        let nameField = try metadata.field("name")
        let name = try nameField.requiredString()
        switch kind {
        case "Service": try nameField.requireSyntax(name, .dns1035Label, what: "Service name")
        default: try nameField.requireSyntax(name, .dns1123Subdomain, what: "\(kind) name")
        }
        let namespaceField = try metadata.field("namespace")
        let namespace = try namespaceField.optionalString().flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        try namespaceField.requireSyntax(namespace, .dns1123Label, what: "namespace")
        let owner = ObjectRef(source: source, kind: kind, namespace: namespace, name: name, location: location)
        return (namespace, name, Field(root: root.value ?? .null, owner: owner))
    }

    private func nonEmptyString(_ field: Field) throws(InputError) -> String? {
        guard let text = try field.optionalString(), !text.isEmpty else { return nil }
        return text
    }
}
