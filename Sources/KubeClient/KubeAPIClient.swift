import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// Lists and watches resources of one API server over HTTP/1.1 or HTTP/2 with TLS verified
/// against the connection's CA, a bearer token re-read from its file for every request, and
/// a client certificate when one is configured. Call `shutdown()` when done.
public final class KubeAPIClient: Sendable {
    /// Tunables of the client.
    public struct Options: Sendable, Equatable {
        /// Time allowed to connect (TCP and TLS).
        public var connectTimeout: Duration
        /// Longest silence on a connection before it is taken as dead; a watch must get an
        /// event or bookmark within this time (real API servers bookmark every minute).
        public var idleTimeout: Duration
        /// The largest list response accepted.
        public var maximumResponseBytes: Int
        /// The User-Agent header.
        public var userAgent: String

        /// Creates options; the defaults suit a node agent.
        public init(connectTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(150),
                    maximumResponseBytes: Int = 1 << 30, userAgent: String = "nftproxy") {
            self.connectTimeout = connectTimeout
            self.idleTimeout = idleTimeout
            self.maximumResponseBytes = maximumResponseBytes
            self.userAgent = userAgent
        }
    }

    /// The server, CA and credentials in use.
    public let connection: ClusterConnection
    /// The tunables in use.
    public let options: Options
    private let http: HTTPClient
    private let token: BearerToken

    /// Creates a client; fails when the CA, client certificate or key cannot be loaded.
    public init(connection: ClusterConnection, options: Options = Options()) throws(KubeClientError) {
        self.connection = connection
        self.options = options
        self.token = BearerToken(connection.credentials)
        var tls = TLSConfiguration.makeClientConfiguration()
        // Closing a connection (a cancelled watch, shutdown) waits this long for the server's
        // close_notify; API servers often just close the socket, so keep it short.
        tls.shutdownTimeout = .milliseconds(200)
        do {
            if connection.insecureSkipTLSVerify {
                tls.certificateVerification = .none
            } else if let authority = connection.certificateAuthorityPEM {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(authority))
            }
            if let certificate = connection.credentials.clientCertificatePEM,
               let key = connection.credentials.clientKeyPEM {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificate).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
            }
        } catch {
            throw .configuration("TLS material of \(connection.server) cannot be loaded: \(error)")
        }
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow,
            timeout: .init(connect: TimeAmount(options.connectTimeout), read: TimeAmount(options.idleTimeout)))
        configuration.httpVersion = .automatic
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// Closes all connections.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    /// One page of the collection at `path` (e.g. `/api/v1/services`).
    public func list(_ path: String, query: ListQuery) async throws(KubeClientError) -> ListPage {
        let request = APIRequest(verb: "list", path: path)
        let response = try await send(request, query: query.queryItems)
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: options.maximumResponseBytes)
        } catch {
            throw translate(error, request: request)
        }
        // The body is copied once, for the envelope reader (whose items are slices of it).
        let bytes = Array(buffer: body)
        try check(response.status, body: bytes, request: request)
        do {
            return try JSONEnvelope.listPage(bytes)
        } catch {
            throw .malformed(request, error.description)
        }
    }

    /// The whole collection, page after page of `pageSize` items, and the list's resourceVersion.
    /// A continue token that expired in between (410) makes the list start again from the first page.
    public func listAll(_ path: String, labelSelector: String? = nil, fieldSelector: String? = nil,
                        pageSize: Int? = 500) async throws(KubeClientError) -> (items: [RawObject], resourceVersion: String) {
        var items: [RawObject] = []
        let version = try await listAll(path, labelSelector: labelSelector, fieldSelector: fieldSelector,
                                        pageSize: pageSize) { page, first in
            if first { items.removeAll() }
            items.append(contentsOf: page)
        }
        return (items, version)
    }

    /// The whole collection, handed to `eachPage` page by page as the pages arrive (so that a
    /// consumer can decode each and drop its bytes before the next one), and the list's
    /// resourceVersion. `first` is true for the first page of the list and again when a
    /// continue token expired in between (410) and the list starts over: the consumer then
    /// forgets the pages before.
    ///
    /// The next page is requested as soon as a page's continue token is known, so that its
    /// transfer overlaps `eachPage` of the page before (at most one page is fetched ahead).
    public func listAll(_ path: String, labelSelector: String? = nil, fieldSelector: String? = nil,
                        pageSize: Int? = 500,
                        eachPage: ([RawObject], _ first: Bool) async -> Void) async throws(KubeClientError) -> String {
        var query = ListQuery(labelSelector: labelSelector, fieldSelector: fieldSelector, limit: pageSize)
        var restarts = 0
        var ahead: Task<Result<ListPage, KubeClientError>, Never>?
        defer { ahead?.cancel() }
        while true {
            let page: ListPage
            do throws(KubeClientError) {
                if let fetching = ahead {
                    ahead = nil
                    page = try await withTaskCancellationHandler {
                        await fetching.value
                    } onCancel: {
                        fetching.cancel()
                    }.get()
                } else {
                    page = try await list(path, query: query)
                }
            } catch .expired(let request, let message) where query.continueToken != nil && restarts < 3 {
                // The snapshot the pages came from was compacted: start over, as client-go's pager does.
                _ = (request, message)
                restarts += 1
                query.continueToken = nil
                continue
            }
            let first = query.continueToken == nil
            if let next = page.continueToken {
                query.continueToken = next
                let nextQuery = query
                ahead = Task { [self] in
                    do throws(KubeClientError) {
                        return .success(try await list(path, query: nextQuery))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            await eachPage(page.items, first)
            guard page.continueToken != nil else { return page.resourceVersion }
        }
    }

    /// Watches the collection at `path`, handing each event to `onEvent` in order, until the
    /// server ends the stream (returns normally) or something fails (throws). An ERROR event
    /// with a Status ends the watch with the matching error (`.expired` for 410).
    public func watch(_ path: String, query: WatchQuery,
                      onEvent: (WatchEvent) async -> Void) async throws(KubeClientError) {
        let request = APIRequest(verb: "watch", path: path)
        let response = try await send(request, query: query.queryItems)
        if response.status != .ok {
            let body = (try? await response.body.collect(upTo: 1 << 20)).map { Array(buffer: $0) } ?? []
            try check(response.status, body: body, request: request)
        }
        var splitter = WatchEventSplitter()
        do {
            for try await chunk in response.body {
                let events: [[UInt8]]
                do {
                    events = try splitter.append(chunk.readableBytesView)
                } catch {
                    throw KubeClientError.malformed(request, error.description)
                }
                for bytes in events {
                    let event: WatchEvent
                    do {
                        event = try JSONEnvelope.watchEvent(bytes)
                    } catch {
                        throw KubeClientError.malformed(request, "watch event: \(error.description)")
                    }
                    if case .error(let status) = event {
                        throw KubeClientError(status: status, request: request)
                    }
                    await onEvent(event)
                }
            }
        } catch let error as KubeClientError {
            throw error
        } catch {
            throw translate(error, request: request)
        }
        if splitter.bufferedByteCount > 0 {
            throw .transport("watch stream of \(path) ended inside an event")
        }
    }

    private func send(_ request: APIRequest, query: [(String, String)]) async throws(KubeClientError) -> HTTPClientResponse {
        let queryText = encodeQuery(query)
        var http = HTTPClientRequest(url: connection.server + request.path + (queryText.isEmpty ? "" : "?" + queryText))
        http.method = .GET
        http.headers.add(name: "Accept", value: "application/json")
        http.headers.add(name: "User-Agent", value: options.userAgent)
        if let bearer = try token.current() {
            http.headers.add(name: "Authorization", value: "Bearer \(bearer)")
        }
        do {
            // No overall deadline: a watch lasts until the server's timeoutSeconds; the idle
            // (read) timeout notices a dead connection.
            return try await self.http.execute(http, deadline: .distantFuture)
        } catch {
            throw translate(error, request: request)
        }
    }

    private func check(_ status: HTTPResponseStatus, body: [UInt8], request: APIRequest) throws(KubeClientError) {
        guard !(200..<300).contains(Int(status.code)) else { return }
        let parsed = try? JSONEnvelope.status(body)
        let apiStatus = parsed ?? APIStatus(code: Int(status.code), reason: status.reasonPhrase,
                                            message: String(decoding: body.prefix(500), as: UTF8.self))
        throw KubeClientError(status: APIStatus(code: Int(status.code), reason: apiStatus.reason, message: apiStatus.message),
                              request: request)
    }

    private func translate(_ error: any Error, request: APIRequest) -> KubeClientError {
        if let error = error as? KubeClientError { return error }
        if error is CancellationError { return .cancelled }
        if let error = error as? HTTPClientError {
            switch error {
            case .readTimeout:
                let components = options.idleTimeout.components
                return .idleTimeout(seconds: Double(components.seconds) + Double(components.attoseconds) / 1e18)
            case .cancelled: return .cancelled
            default: return .transport("\(request): \(error)")
            }
        }
        if error is NIOSSLError || error is BoringSSLError {
            return .tls("\(connection.server): \(error)")
        }
        return .transport("\(request): \(error)")
    }
}

extension KubeClientError {
    /// The error a Status stands for, on `request`.
    init(status: APIStatus, request: APIRequest) {
        switch status.code {
        case 401: self = .unauthorized(request, message: status.message)
        case 403: self = .forbidden(request, message: status.message)
        case 410: self = .expired(request, message: status.message)
        default: self = .status(request, code: status.code, reason: status.reason, message: status.message)
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let components = duration.components
        self = .nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    }
}
