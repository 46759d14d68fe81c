/// An input that cannot be turned into a `ServiceMap`: a syntax error, or a Service or
/// EndpointSlice that Kubernetes itself would reject.
///
/// The message names where the problem is, from the outside in: the input, the document in
/// it (and the item, in a `List`), the object, the field:
/// `services.yaml: document 2: Service default/web: spec.ports[1].port: 70000 is not a valid port (1-65535)`.
public struct InputError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Display name of the input (a path, or `<stdin>`).
    public var source: String
    /// The document of a `---` stream, counted from 1, and the item of a `List`:
    /// `document 2` or `document 1, items[3]`; nil for problems of the input as a whole.
    public var document: String?
    /// The object, as `Kind namespace/name`, or only `Kind` while its name is unknown; nil when
    /// not even the kind is known, and for problems of the input as a whole.
    public var object: String?
    /// Path of the offending field inside the object, e.g. `spec.ports[1].port`.
    public var field: String?
    /// What is wrong.
    public var problem: String

    /// Creates an error; see the properties for the meaning of each part.
    public init(source: String, document: String? = nil, object: String? = nil, field: String? = nil,
                problem: String) {
        self.source = source
        self.document = document
        self.object = object
        self.field = field
        self.problem = problem
    }

    /// `source: document: object: field: problem`, leaving out the parts that are nil.
    public var description: String {
        [source, document, object, field, problem].compactMap { $0 }.joined(separator: ": ")
    }
}
