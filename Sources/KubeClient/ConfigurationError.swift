/// A kubeconfig or in-cluster configuration that cannot be used.
///
/// The message names the source, the entry and the field, from the outside in:
/// `/root/.kube/config: users[name=admin]: user.client-key: file /x/key.pem cannot be read`.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Where the configuration came from (a path, or `in-cluster`).
    public var source: String
    /// The entry, e.g. `clusters[name=prod]`; nil for problems of the configuration as a whole.
    public var entry: String?
    /// Path of the offending field inside the entry, e.g. `cluster.server`.
    public var field: String?
    /// What is wrong.
    public var problem: String

    /// Creates an error; see the properties for the meaning of each part.
    public init(source: String, entry: String? = nil, field: String? = nil, problem: String) {
        self.source = source
        self.entry = entry
        self.field = field
        self.problem = problem
    }

    /// `source: entry: field: problem`, leaving out the parts that are nil.
    public var description: String {
        [source, entry, field, problem].compactMap { $0 }.joined(separator: ": ")
    }
}
