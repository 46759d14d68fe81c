import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// Serves one HTTP/1.1 connection: discovery, GET of one object, paged lists and chunked
/// watch streams, with bearer-token authentication and 403s on demand.
final class RequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let shared: SharedState
    private var head: HTTPRequestHead?
    private var context: ChannelHandlerContext?
    /// The open watch of this connection, if a watch response is being streamed.
    private var watch: OpenWatch?

    private struct OpenWatch {
        var id: Int?
        var resource: ServedResource
        var timeout: Scheduled<Void>?
        var bookmarkTimer: RepeatedTask?
    }

    init(shared: SharedState) {
        self.shared = shared
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        endWatch()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: Routing

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let components = URLComponents(string: head.uri)
        let path = components?.path ?? head.uri
        var query: [String: String] = [:]
        for item in components?.queryItems ?? [] { query[item.name] = item.value ?? "" }
        let token = Self.bearerToken(head.headers)
        shared.record(RecordedRequest(method: head.method.rawValue, path: path, query: query, token: token))

        guard head.method == .GET else {
            return send(status: .methodNotAllowed, Responses.status(code: 405, reason: "MethodNotAllowed",
                        message: "the stand-in serves only GET"), head: head)
        }
        guard shared.accepts(token: token) || hasVerifiedClientCertificate(context) else {
            return send(status: .unauthorized, Responses.status(code: 401, reason: "Unauthorized", message: "Unauthorized"),
                        head: head)
        }
        switch path {
        case "/version", "/version/": return send(status: .ok, Discovery.version(), head: head)
        case "/api", "/api/": return send(status: .ok, Discovery.coreVersions(serverAddress: shared.serverAddress), head: head)
        case "/apis", "/apis/": return send(status: .ok, Discovery.groups(), head: head)
        default: break
        }
        let segments = path.split(separator: "/").map(String.init)
        guard let route = Route(segments: segments) else {
            return notFound(path, head: head)
        }
        switch route {
        case .groupVersion(let groupVersion):
            guard let body = Discovery.resources(groupVersion: groupVersion) else { return notFound(path, head: head) }
            send(status: .ok, body, head: head)
        case .resource(let resource, let namespace, let name):
            let isWatch = Self.flag(query["watch"])
            let verb = isWatch ? "watch" : (name == nil ? "list" : "get")
            if let denial = shared.denial(verb: verb, resource: resource, namespace: namespace) {
                return send(status: .forbidden, denial, head: head)
            }
            if let name {
                let key = namespace.map { "\($0)/\(name)" } ?? name
                guard let object = shared.store.get(resource, key: key) else {
                    return send(status: .notFound, Responses.status(
                        code: 404, reason: "NotFound", message: "\(resource.plural) \"\(name)\" not found",
                        details: ["name": name, "kind": resource.plural]), head: head)
                }
                return send(status: .ok, object.json, head: head)
            }
            var filter = ObjectFilter(resource: resource, namespace: namespace)
            do throws(SelectorError) {
                if let text = query["labelSelector"], !text.isEmpty { filter.labels = try LabelSelector(text) }
                if let text = query["fieldSelector"], !text.isEmpty { filter.fields = try FieldSelector(text) }
            } catch {
                return send(status: .badRequest, Responses.status(code: 400, reason: "BadRequest", message: error.message),
                            head: head)
            }
            if isWatch {
                startWatch(filter, query: query, head: head, context: context)
            } else {
                list(filter, query: query, head: head)
            }
        }
    }

    private func list(_ filter: ObjectFilter, query: [String: String], head: HTTPRequestHead) {
        let limit = query["limit"].flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil }
        let continueToken = query["continue"].flatMap { $0.isEmpty ? nil : $0 }
        do throws(ListFailure) {
            let result = try shared.store.list(filter, limit: limit, continueToken: continueToken,
                                               resourceVersion: query["resourceVersion"].flatMap(Int.init))
            send(status: .ok, Responses.list(result, resource: filter.resource), head: head)
        } catch {
            switch error {
            case .expired(let message):
                send(status: .gone, Responses.status(code: 410, reason: "Expired", message: message), head: head)
            case .badRequest(let message):
                send(status: .badRequest, Responses.status(code: 400, reason: "BadRequest", message: message), head: head)
            }
        }
    }

    // MARK: Watches

    private func startWatch(_ filter: ObjectFilter, query: [String: String], head: HTTPRequestHead,
                            context: ChannelHandlerContext) {
        let bookmarks = Self.flag(query["allowWatchBookmarks"])
        let from = query["resourceVersion"].flatMap(Int.init)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let registration = shared.store.watch(filter, from: from, bookmarks: bookmarks) { delivery in
            eventLoop.execute { bound.value.deliver(delivery) }
        }
        if registration.id == nil, shared.watchExpiryAsResponse,
           case .expired(let message) = registration.backlog.first {
            return send(status: .gone, Responses.status(code: 410, reason: "Expired", message: message), head: head)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Transfer-Encoding", value: "chunked")
        headers.add(name: "Cache-Control", value: "no-cache, private")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))),
                      promise: nil)
        watch = OpenWatch(id: registration.id, resource: filter.resource)
        for delivery in registration.backlog { deliver(delivery) }
        context.flush()
        guard watch != nil else { return }
        if let seconds = query["timeoutSeconds"].flatMap(Int64.init), seconds > 0 {
            watch?.timeout = eventLoop.scheduleTask(in: .seconds(seconds)) { bound.value.finishWatch() }
        }
        if bookmarks, let interval = shared.bookmarkInterval {
            let store = shared.store
            watch?.bookmarkTimer = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                bound.value.deliver(.bookmark(resourceVersion: store.revision))
            }
        }
    }

    /// Writes one delivery to the open watch (on the event loop).
    private func deliver(_ delivery: WatchDelivery) {
        guard let context, let resource = watch?.resource else { return }
        switch delivery {
        case .event(let type, let object):
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(Responses.watchEvent(type: type, object: object.json)))),
                                  promise: nil)
        case .bookmark(let resourceVersion):
            let object = Responses.bookmarkObject(resource: resource, resourceVersion: resourceVersion)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(Responses.watchEvent(type: "BOOKMARK", object: object)))),
                                  promise: nil)
        case .expired(let message):
            let status = Responses.status(code: 410, reason: "Expired", message: message)
            context.write(wrapOutboundOut(.body(.byteBuffer(Responses.watchEvent(type: "ERROR", object: status)))),
                          promise: nil)
            finishWatch()
        case .drop:
            endWatch()
            context.close(promise: nil)
        }
    }

    /// Ends the watch response properly (the terminating chunk); the connection stays usable.
    private func finishWatch() {
        guard watch != nil, let context else { return }
        endWatch()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func endWatch() {
        guard let open = watch else { return }
        watch = nil
        open.timeout?.cancel()
        open.bookmarkTimer?.cancel()
        if let id = open.id { shared.store.unwatch(id) }
    }

    // MARK: Plain responses

    private func notFound(_ path: String, head: HTTPRequestHead) {
        send(status: .notFound, Responses.status(code: 404, reason: "NotFound", message: "the server could not find the requested resource",
                                                 details: ["causes": [["reason": "UnexpectedServerResponse", "message": "404 page not found"]]]),
             head: head)
    }

    private func send(status: HTTPResponseStatus, _ body: [UInt8], head: HTTPRequestHead) {
        var buffer = ByteBuffer()
        buffer.writeBytes(body)
        send(status: status, buffer, head: head)
    }

    private func send(status: HTTPResponseStatus, _ body: ByteBuffer, head: HTTPRequestHead) {
        guard let context else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
                      promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Whether the TLS handshake verified a client certificate (only a server that trusts a
    /// client CA asks for one).
    private func hasVerifiedClientCertificate(_ context: ChannelHandlerContext) -> Bool {
        guard shared.clientCertificates,
              let tls = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self) else { return false }
        return tls.peerCertificate != nil
    }

    /// A boolean query parameter as Go's strconv.ParseBool reads it (the Python client sends `True`).
    private static func flag(_ value: String?) -> Bool {
        ["1", "t", "T", "true", "TRUE", "True"].contains(value ?? "")
    }

    private static func bearerToken(_ headers: HTTPHeaders) -> String? {
        guard let value = headers.first(name: "Authorization"), value.hasPrefix("Bearer ") else { return nil }
        return String(value.dropFirst("Bearer ".count)).trimmedSpaces
    }
}

/// A request path below /api or /apis.
enum Route {
    case groupVersion(String)
    case resource(ServedResource, namespace: String?, name: String?)

    init?(segments: [String]) {
        let groupVersion: String
        let rest: ArraySlice<String>
        if segments.first == "api", segments.count >= 2 {
            groupVersion = segments[1]
            rest = segments.dropFirst(2)
        } else if segments.first == "apis", segments.count >= 3 {
            groupVersion = "\(segments[1])/\(segments[2])"
            rest = segments.dropFirst(3)
        } else {
            return nil
        }
        guard let first = rest.first else {
            self = .groupVersion(groupVersion)
            return
        }
        let parts = Array(rest)
        var namespace: String?
        var plural = first
        var name: String?
        if first == "namespaces", parts.count >= 3 {
            namespace = parts[1]
            plural = parts[2]
            name = parts.count > 3 ? parts[3] : nil
            guard parts.count <= 4 else { return nil }
        } else {
            name = parts.count > 1 ? parts[1] : nil
            guard parts.count <= 2 else { return nil }
        }
        guard let resource = ServedResource.all.first(where: { $0.apiVersion == groupVersion && $0.plural == plural }) else {
            return nil
        }
        if namespace != nil && !resource.namespaced { return nil }
        self = .resource(resource, namespace: namespace, name: name)
    }
}
