/// Why a request to the API server failed. Each case carries what a log line needs; the
/// reflector reports these and retries, so a daemon can count API errors by code.
public enum KubeClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The connection settings cannot be used (bad certificate, unreadable token file ...).
    case configuration(String)
    /// The server's certificate was not accepted, or the TLS handshake failed.
    case tls(String)
    /// The connection failed or broke (refused, reset, closed in the middle of a response).
    case transport(String)
    /// Nothing arrived for longer than the idle timeout: the connection is taken as dead.
    case idleTimeout(seconds: Double)
    /// 401: the credentials were not accepted.
    case unauthorized(APIRequest, message: String)
    /// 403: the identity lacks the permission `request.verb` on `request.resource`.
    case forbidden(APIRequest, message: String)
    /// 410 Gone / reason Expired: the resourceVersion or continue token is too old; re-list.
    case expired(APIRequest, message: String)
    /// Any other error status from the server (an HTTP response or an ERROR watch event).
    case status(APIRequest, code: Int, reason: String, message: String)
    /// The server sent something that is not the JSON it should be.
    case malformed(APIRequest, String)
    /// The task was cancelled.
    case cancelled

    /// The HTTP status code behind the error, when there is one (for counting errors by code).
    public var statusCode: Int? {
        switch self {
        case .unauthorized: return 401
        case .forbidden: return 403
        case .expired: return 410
        case .status(_, let code, _, _): return code
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .configuration(let text): return "configuration: \(text)"
        case .tls(let text): return "TLS: \(text)"
        case .transport(let text): return "connection: \(text)"
        case .idleTimeout(let seconds): return "no data for \(seconds) s: connection taken as dead"
        case .unauthorized(let request, let message):
            return "401 Unauthorized on \(request): the API server rejected the credentials (expired or rotated token?): \(message)"
        case .forbidden(let request, let message):
            return "403 Forbidden: missing permission \"\(request.verb)\" on \(request.resourceDescription)"
                + " (grant it in the ClusterRole): \(message)"
        case .expired(let request, let message): return "410 Expired on \(request): \(message)"
        case .status(let request, let code, let reason, let message):
            return "\(code) \(reason) on \(request): \(message)"
        case .malformed(let request, let text): return "malformed response to \(request): \(text)"
        case .cancelled: return "cancelled"
        }
    }
}

/// What a request did, for errors and logs: `list services` at `/api/v1/services`.
public struct APIRequest: Sendable, Equatable, CustomStringConvertible {
    /// The Kubernetes verb: `list`, `watch` or `get`.
    public var verb: String
    /// The resource collection path, e.g. `/apis/discovery.k8s.io/v1/endpointslices`.
    public var path: String

    /// Creates a description of a request.
    public init(verb: String, path: String) {
        self.verb = verb
        self.path = path
    }

    /// The resource name, e.g. `endpointslices` (the last path segment of a collection).
    public var resource: String { path.split(separator: "/").last.map(String.init) ?? path }

    /// The API group: `discovery.k8s.io` for `/apis/discovery.k8s.io/v1/...`, "" for `/api/v1/...`.
    public var group: String {
        let parts = path.split(separator: "/")
        return parts.first == "apis" && parts.count > 1 ? String(parts[1]) : ""
    }

    /// `services in API group ""`, as the API server words it.
    public var resourceDescription: String { "\(resource) in API group \"\(group)\"" }

    public var description: String { "\(verb) \(path)" }
}
