import NIOConcurrencyHelpers
import NIOCore

/// A request as the stand-in received it, for tests to check (e.g. which token was sent).
public struct RecordedRequest: Sendable, Equatable {
    /// HTTP method.
    public var method: String
    /// Path without the query.
    public var path: String
    /// Query parameters (the last value of each).
    public var query: [String: String]
    /// The bearer token sent, if any.
    public var token: String?
}

/// What all connections of one stand-in share: the objects, the accepted tokens, the
/// permissions taken away, and a log of requests.
final class SharedState: Sendable {
    let store: ObjectStore
    let bookmarkInterval: TimeAmount?
    /// Whether verified client certificates authenticate requests.
    let clientCertificates: Bool
    private let tokens: NIOLockedValueBox<Set<String>>
    private let denied = NIOLockedValueBox<Set<String>>([])
    private let log = NIOLockedValueBox<[RecordedRequest]>([])
    private let address = NIOLockedValueBox<String>("127.0.0.1:0")
    private let expiryAsResponse = NIOLockedValueBox(false)
    /// Requests kept in the log at most (the oldest are dropped).
    private let logLimit = 10_000
    /// The identity named in 403 messages.
    let userName: String

    init(store: ObjectStore, tokens: Set<String>, bookmarkInterval: TimeAmount?, clientCertificates: Bool, userName: String) {
        self.clientCertificates = clientCertificates
        self.store = store
        self.tokens = NIOLockedValueBox(tokens)
        self.bookmarkInterval = bookmarkInterval
        self.userName = userName
    }

    var serverAddress: String {
        get { address.withLockedValue { $0 } }
        set { address.withLockedValue { $0 = newValue } }
    }

    /// Whether `token` may make requests: any request when no tokens are configured.
    func accepts(token: String?) -> Bool {
        tokens.withLockedValue { tokens in
            tokens.isEmpty || token.map(tokens.contains) == true
        }
    }

    /// Whether a watch from a compacted resourceVersion is refused with a 410 response
    /// instead of a 200 stream holding an ERROR event (API servers answer both ways,
    /// depending on whether the watch cache serves the request).
    var watchExpiryAsResponse: Bool {
        get { expiryAsResponse.withLockedValue { $0 } }
        set { expiryAsResponse.withLockedValue { $0 = newValue } }
    }

    func setTokens(_ accepted: Set<String>) {
        tokens.withLockedValue { $0 = accepted }
    }

    func setDenied(verb: String, resource: String, _ isDenied: Bool) {
        denied.withLockedValue { denied in
            if isDenied { denied.insert("\(verb) \(resource)") } else { denied.remove("\(verb) \(resource)") }
        }
    }

    /// A 403 body if `verb` on `resource` is denied, worded as the API server's RBAC denial.
    func denial(verb: String, resource: ServedResource, namespace: String?) -> [UInt8]? {
        guard denied.withLockedValue({ $0.contains("\(verb) \(resource.plural)") }) else { return nil }
        let scope = namespace.map { "in the namespace \"\($0)\"" } ?? "at the cluster scope"
        let message = "\(resource.plural) is forbidden: User \"\(userName)\" cannot \(verb) resource "
            + "\"\(resource.plural)\" in API group \"\(resource.group)\" \(scope)"
        return Responses.status(code: 403, reason: "Forbidden", message: message,
                                details: ["group": resource.group, "kind": resource.plural])
    }

    func record(_ request: RecordedRequest) {
        log.withLockedValue { log in
            log.append(request)
            if log.count > logLimit { log.removeFirst(log.count - logLimit) }
        }
    }

    var requests: [RecordedRequest] { log.withLockedValue { $0 } }
}
