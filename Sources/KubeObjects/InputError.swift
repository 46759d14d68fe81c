/// An input that cannot be turned into a `ServiceMap`: a syntax error, or a Service or
/// EndpointSlice that Kubernetes itself would reject.
///
/// The message names where the problem is, from the outside in:
/// `services.yaml: Service default/web: spec.ports[1].port: 70000 is not a valid port (1-65535)`.
public struct InputError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Display name of the input (a path, or `<stdin>`).
    public var source: String
    /// The object, as `Kind namespace/name` (or `Kind at items[3]` while its name is unknown);
    /// nil for problems of the input as a whole, such as syntax errors.
    public var object: String?
    /// Path of the offending field inside the object, e.g. `spec.ports[1].port`.
    public var field: String?
    /// What is wrong.
    public var problem: String

    /// Creates an error; see the properties for the meaning of each part.
    public init(source: String, object: String? = nil, field: String? = nil, problem: String) {
        self.source = source
        self.object = object
        self.field = field
        self.problem = problem
    }

    /// `source: object: field: problem`, leaving out the parts that are nil.
    public var description: String {
        [source, object, field, problem].compactMap { $0 }.joined(separator: ": ")
    }
}
