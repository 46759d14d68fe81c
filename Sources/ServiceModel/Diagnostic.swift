/// Something nftproxy noticed in its input, or decided on its own, that does not stop it:
/// an object it skips, a field it does not honour, a frontend two Services claim.
///
/// A value with typed parts, so that each consumer presents it its own way: the command line
/// prints ``text`` (`warning: …`), the daemon logs ``message`` with the other parts as
/// structured fields, and tests compare ``code``, ``object`` and ``field``. The decoder and the
/// compiler build the same value for the same finding, so a caller that shows both lists can
/// leave out repeats by equality.
public struct Diagnostic: Hashable, Sendable, CustomStringConvertible {
    /// How much it matters.
    public enum Severity: String, Hashable, Sendable {
        /// Something is served differently from what the input asks for.
        case warning
        /// An object that is valid but not for this proxy, left out as kube-proxy leaves it out.
        case notice
    }

    /// What was found, one case per kind of finding; the raw value names it in logs.
    public enum Code: String, Hashable, Sendable, CaseIterable {
        /// A frontend (address, protocol, port) or NodePort claimed by two Services; ``related``
        /// is the Service that keeps it.
        case frontendConflict = "frontend-conflict"
        /// An object defined again in a later input; ``related`` is the first definition.
        case redefinedObject = "redefined-object"
        /// An externalIP or load-balancer IP that is also one of the Service's own addresses.
        case repeatedOwnAddress = "repeated-own-address"
        /// A field nftproxy reads but does not honour (yet).
        case unsupportedField = "unsupported-field"
        /// An object of a kind nftproxy does not read (a Deployment, a ConfigMap, …).
        case skippedKind = "skipped-kind"
        /// A Service or EndpointSlice of an API version nftproxy does not read.
        case unsupportedAPIVersion = "unsupported-api-version"
        /// A Service of type ExternalName (DNS only: nothing to proxy).
        case externalNameService = "external-name-service"
        /// A Service left to another proxy by its `service.kubernetes.io/service-proxy-name` label.
        case serviceProxyName = "service-proxy-name"
        /// A headless Service (clusterIP None, or the `service.kubernetes.io/headless` label).
        case headlessService = "headless-service"
        /// A Service without a clusterIP.
        case noClusterIP = "no-cluster-ip"
        /// An EndpointSlice of addressType FQDN.
        case fqdnEndpointSlice = "fqdn-endpoint-slice"
        /// An EndpointSlice without the `kubernetes.io/service-name` label.
        case endpointSliceWithoutService = "endpoint-slice-without-service"
    }

    public var severity: Severity
    public var code: Code
    /// The object it concerns.
    public var object: DiagnosticObject
    /// Path of the field inside ``object``, as input errors name fields (`spec.ports[0].nodePort`);
    /// nil when the finding concerns the object as a whole.
    public var field: String?
    /// Another object involved: the Service that keeps a contested frontend, the first
    /// definition of a redefined object.
    public var related: DiagnosticObject?
    /// The frontend a ``Code/frontendConflict`` is about.
    public var frontend: FrontendKey?
    /// The whole finding in one sentence, as the command line prints it after `warning: `
    /// or `notice: `.
    public var message: String

    /// Creates a diagnostic; see the properties for the meaning of each part.
    public init(_ severity: Severity, _ code: Code, object: DiagnosticObject, field: String? = nil,
                related: DiagnosticObject? = nil, frontend: FrontendKey? = nil, message: String) {
        self.severity = severity
        self.code = code
        self.object = object
        self.field = field
        self.related = related
        self.frontend = frontend
        self.message = message
    }

    /// ``message``.
    public var description: String { message }

    /// The line the command line prints: `warning: …` or `notice: …`.
    public var text: String { "\(severity.rawValue): \(message)" }
}

/// The object a ``Diagnostic`` concerns, and where it was read.
public struct DiagnosticObject: Hashable, Sendable, CustomStringConvertible {
    /// `Service`, `EndpointSlice`, or the kind of a skipped object (`Deployment`).
    public var kind: String
    /// The object's apiVersion, when it says more than the kind (a skipped object's).
    public var apiVersion: String?
    /// nil for objects without one (cluster-scoped, or unnamed).
    public var namespace: String?
    /// nil when the object has no name.
    public var name: String?
    /// The input it was read from (a path, `<stdin>`, `API`); nil when the finding concerns
    /// objects after they were joined (frontend conflicts, compiler findings).
    public var source: String?
    /// The document of the input (and the item of a List): `document 2`, `document 1, items[3]`.
    public var document: String?

    /// Creates a reference; see the properties for the meaning of each part.
    public init(kind: String, apiVersion: String? = nil, namespace: String? = nil, name: String? = nil,
                source: String? = nil, document: String? = nil) {
        self.kind = kind
        self.apiVersion = apiVersion
        self.namespace = namespace
        self.name = name
        self.source = source
        self.document = document
    }

    /// A Service, by name.
    public static func service(_ name: ServiceName, source: String? = nil, document: String? = nil) -> Self {
        DiagnosticObject(kind: "Service", namespace: name.namespace, name: name.name, source: source, document: document)
    }

    /// The Service name, when this is a Service.
    public var serviceName: ServiceName? {
        guard kind == "Service", let namespace, let name else { return nil }
        return ServiceName(namespace: namespace, name: name)
    }

    /// `Service default/web`, `Deployment web`, or the kind alone.
    public var description: String {
        guard let name else { return kind }
        return namespace.map { "\(kind) \($0)/\(name)" } ?? "\(kind) \(name)"
    }
}
