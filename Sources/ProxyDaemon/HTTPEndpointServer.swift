import Dispatch
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A reply of an `HTTPEndpointServer`.
public struct HTTPReply: Sendable, Equatable {
    public var status: HTTPResponseStatus
    public var headers: [(String, String)]
    /// The body as it is sent.
    public var content: ByteBuffer

    /// The body as text.
    public var body: String { String(buffer: content) }

    public init(status: HTTPResponseStatus, headers: [(String, String)] = [], body: String) {
        self.init(status: status, headers: headers, content: ByteBuffer(string: body))
    }

    /// A reply whose body was written into a buffer (the metrics, tens of megabytes at
    /// 100,000 endpoints, are not copied again).
    public init(status: HTTPResponseStatus, headers: [(String, String)] = [], content: ByteBuffer) {
        self.status = status; self.headers = headers; self.content = content
    }

    /// A JSON body with the headers kube-proxy sends with its health answers.
    public static func json(_ status: HTTPResponseStatus, _ body: String) -> HTTPReply {
        HTTPReply(status: status, headers: [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff")],
                  body: body)
    }

    public static func == (lhs: HTTPReply, rhs: HTTPReply) -> Bool {
        lhs.status == rhs.status && lhs.content == rhs.content
            && lhs.headers.map { "\($0.0): \($0.1)" } == rhs.headers.map { "\($0.0): \($0.1)" }
    }
}

/// A small HTTP/1.1 server for health, metrics and health-check endpoints: every request
/// is answered by a function of its method and path (no request bodies are read).
public final class HTTPEndpointServer: Sendable {
    /// Answers one request.
    public typealias Responder = @Sendable (_ method: HTTPMethod, _ path: String) -> HTTPReply

    private let channel: any Channel
    private let connections: OpenConnections

    /// The address the server listens on (with the port the kernel chose for port 0).
    public var localAddress: SocketAddress? { channel.localAddress }

    private init(channel: any Channel, connections: OpenConnections) {
        self.channel = channel
        self.connections = connections
    }

    /// Starts listening on `host:port` (port 0: any free port).
    public static func start(host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             responder: @escaping Responder) async throws -> HTTPEndpointServer {
        let connections = OpenConnections()
        let channel = try await bootstrap(group, connections, responder)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port)
            .get()
        return HTTPEndpointServer(channel: channel, connections: connections)
    }

    /// Starts listening on `socket`, a bound TCP socket (which the server owns from now on:
    /// for example one made in another network namespace).
    public static func start(boundSocket socket: CInt, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             responder: @escaping Responder) async throws -> HTTPEndpointServer {
        let connections = OpenConnections()
        let channel = try await bootstrap(group, connections, responder)
            .withBoundSocket(socket)
            .get()
        return HTTPEndpointServer(channel: channel, connections: connections)
    }

    /// A bootstrap whose connections speak HTTP/1.1 to `responder`.
    private static func bootstrap(_ group: any EventLoopGroup, _ connections: OpenConnections,
                                  _ responder: @escaping Responder) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                connections.insert(channel)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(EndpointHandler(responder: responder))
                }
            }
    }

    /// Stops listening and closes the open connections (a kept-alive connection would
    /// otherwise go on answering from a server that is gone).
    public func close() async {
        try? await channel.close()
        for connection in connections.all() { try? await connection.close() }
    }
}

/// The accepted connections of a server that are still open.
private final class OpenConnections: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    func insert(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        channels.withLock { $0[key] = channel }
        channel.closeFuture.whenComplete { [self] _ in _ = channels.withLock { $0.removeValue(forKey: key) } }
    }

    func all() -> [any Channel] { channels.withLock { Array($0.values) } }
}

/// Answers each request when its end arrives.
private final class EndpointHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: HTTPEndpointServer.Responder
    /// The head of the request being read (one connection handles one request at a time).
    private var pending: HTTPRequestHead?

    init(responder: @escaping HTTPEndpointServer.Responder) { self.responder = responder }

    /// Writes `reply` to the request `head` (on the channel's event loop).
    private func write(_ reply: HTTPReply, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders(reply.headers)
        headers.replaceOrAdd(name: "Content-Length", value: String(reply.content.readableBytes))
        if !head.isKeepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: reply.status,
                                                             headers: headers))), promise: nil)
        if head.method != HTTPMethod.HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(reply.content))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !head.isKeepAlive {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.whenComplete { _ in loopBound.value.close(promise: nil) }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            pending = head
        case .body:
            break
        case .end:
            guard let head = pending else { return }
            pending = nil
            let path = String(head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            // A responder may take long (a scrape reads the kernel's tables): it runs off the
            // event loop, which all the daemon's servers share, and the reply is written back on it.
            let loop = context.eventLoop
            let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
            let responder = self.responder
            DispatchQueue.global().async {
                let reply = responder(head.method, path)
                loop.execute { bound.value.handler.write(reply, for: head, context: bound.value.context) }
            }
        }
    }
}
