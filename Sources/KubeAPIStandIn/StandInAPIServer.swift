import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The project's own stand-in for a Kubernetes API server, for tests and benchmarks: it
/// speaks the real wire protocol (discovery, paged JSON lists, chunked watch streams with
/// BOOKMARK and ERROR events, Status errors) for Services, EndpointSlices, Nodes and
/// Namespaces, over HTTPS or plain HTTP on 127.0.0.1, and lets the test change objects,
/// compact the history, rotate tokens, deny permissions, drop streams and restart.
public final class StandInAPIServer: Sendable {
    /// How the server is set up.
    public struct Configuration: Sendable {
        /// PEM files of the server certificate and key; nil serves plain HTTP.
        public var tls: (certificatePath: String, keyPath: String)?
        /// Bearer tokens accepted; empty accepts every request.
        public var tokens: Set<String>
        /// PEM file of a CA whose client certificates authenticate a request in place of a
        /// token (TLS only); clients without a certificate are still accepted by the handshake.
        public var clientCertificateAuthorityPath: String?
        /// Interval of BOOKMARK events to watches that allow them; nil sends them only on `sendBookmarks()`.
        public var bookmarkInterval: Duration?
        /// Changes kept for watches and continue tokens; older ones are compacted away.
        public var historyLimit: Int
        /// The user named in 403 messages.
        public var userName: String

        /// Creates a configuration.
        public init(tls: (certificatePath: String, keyPath: String)? = nil, tokens: Set<String> = [],
                    clientCertificateAuthorityPath: String? = nil,
                    bookmarkInterval: Duration? = nil, historyLimit: Int = 100_000,
                    userName: String = "system:serviceaccount:kube-system:nftproxy") {
            self.tls = tls
            self.tokens = tokens
            self.clientCertificateAuthorityPath = clientCertificateAuthorityPath
            self.bookmarkInterval = bookmarkInterval
            self.historyLimit = historyLimit
            self.userName = userName
        }
    }

    private let shared: SharedState
    private let sslContext: NIOSSLContext?
    private let group: MultiThreadedEventLoopGroup
    private let listener = NIOLockedValueBox<(channel: Channel?, port: Int)>((nil, 0))
    private let connections = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])

    /// Creates a server; nothing listens before `start()`.
    public init(configuration: Configuration = Configuration()) throws(StandInError) {
        if let tls = configuration.tls {
            do {
                var settings = TLSConfiguration.makeServerConfiguration(
                    certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificatePath).map { .certificate($0) },
                    privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.keyPath, format: .pem)))
                settings.applicationProtocols = ["http/1.1"]
                if let clientCA = configuration.clientCertificateAuthorityPath {
                    settings.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCA))
                    settings.certificateVerification = .optionalVerification
                }
                sslContext = try NIOSSLContext(configuration: settings)
            } catch {
                throw .startup("TLS certificate or key (\(tls.certificatePath), \(tls.keyPath)): \(error)")
            }
        } else {
            sslContext = nil
        }
        shared = SharedState(
            store: ObjectStore(historyLimit: max(1, configuration.historyLimit)), tokens: configuration.tokens,
            bookmarkInterval: configuration.bookmarkInterval.map { TimeAmount.nanoseconds(Int64($0.components.seconds) * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000) },
            clientCertificates: configuration.tls != nil && configuration.clientCertificateAuthorityPath != nil,
            userName: configuration.userName)
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    /// Starts listening on 127.0.0.1:`port` (0 picks a free port) and returns the port.
    @discardableResult
    public func start(port: Int = 0) async throws(StandInError) -> Int {
        let shared = self.shared
        let sslContext = self.sslContext
        let connections = self.connections
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // TCP_NODELAY is an IPPROTO_TCP option: `.socketOption(.tcp_nodelay)` would set
            // SOL_SOCKET's option of the same number, SO_DEBUG, which only root may set (any
            // other user's server then closed every connection it accepted).
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                connections.withLockedValue { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in connections.withLockedValue { _ = $0.removeValue(forKey: id) } }
                return channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(RequestHandler(shared: shared))
                }
            }
        do {
            let channel = try await bootstrap.bind(host: "127.0.0.1", port: port).get()
            let bound = channel.localAddress?.port ?? port
            listener.withLockedValue { $0 = (channel, bound) }
            shared.serverAddress = "127.0.0.1:\(bound)"
            return bound
        } catch {
            throw .startup("cannot listen on 127.0.0.1:\(port): \(error)")
        }
    }

    /// The port listened on (0 before `start()`).
    public var port: Int { listener.withLockedValue { $0.port } }

    /// `https://127.0.0.1:PORT` (or `http://` without TLS).
    public var url: String { "\(sslContext == nil ? "http" : "https")://127.0.0.1:\(port)" }

    /// Closes the listener and every connection (watches end as if the server died).
    public func stopListening() async {
        let channel = listener.withLockedValue { $0.channel }
        try? await channel?.close()
        for connection in connections.withLockedValue({ Array($0.values) }) {
            try? await connection.close()
        }
    }

    /// A restart: every connection is cut, then the server listens again on the same port with
    /// the same objects (as an API server backed by the same etcd).
    public func restart() async throws(StandInError) {
        let previous = port
        await stopListening()
        _ = shared.store.endWatches(with: .drop)
        try await start(port: previous)
    }

    /// Stops the server for good.
    public func shutdown() async {
        await stopListening()
        try? await group.shutdownGracefully()
    }

    // MARK: Objects

    /// Creates or replaces an object given as JSON; returns its new resourceVersion.
    @discardableResult
    public func put(_ resource: ServedResource, json: String) throws(StandInError) -> Int {
        try put(resource, jsonBytes: Array(json.utf8))
    }

    /// Creates or replaces an object given as the bytes of a JSON object (UTF-8); returns its
    /// new resourceVersion. The object is kept as these bytes (with kind, apiVersion and the
    /// metadata the server sets), not parsed into Foundation objects: the fast way to load many.
    @discardableResult
    public func put(_ resource: ServedResource, jsonBytes: [UInt8]) throws(StandInError) -> Int {
        let incoming: IncomingObject
        do throws(StandInError) {
            incoming = try IncomingObject(resource: resource, json: jsonBytes)
        } catch {
            guard case .badObject(let problem) = error else { throw error }
            throw .badObject("\(problem) in \(String(decoding: jsonBytes.prefix(200), as: UTF8.self))")
        }
        return shared.store.put(incoming).resourceVersion
    }

    /// Creates or replaces an object given as a JSON dictionary; returns its new resourceVersion.
    @discardableResult
    public func put(_ resource: ServedResource, object: [String: Any]) throws(StandInError) -> Int {
        shared.store.put(try IncomingObject(resource: resource, object: object)).resourceVersion
    }

    /// Deletes an object.
    public func delete(_ resource: ServedResource, namespace: String = "", name: String) throws(StandInError) {
        try shared.store.delete(resource, namespace: namespace, name: name)
    }

    /// The current resourceVersion.
    public var resourceVersion: Int { shared.store.revision }

    /// Forgets the change history, so watches and continue tokens from before get 410 Expired.
    public func compact() {
        shared.store.compact()
    }

    // MARK: Streams

    /// Ends every open watch with an ERROR event carrying a 410 Expired Status, as a real
    /// server does when a watcher falls behind the compacted history. Returns how many.
    @discardableResult
    public func expireWatches() -> Int {
        shared.store.endWatches(with: .expired(message: "too old resource version: \(resourceVersion - 1) (\(resourceVersion))"))
    }

    /// Cuts the connection of every open watch in the middle of its stream. Returns how many.
    @discardableResult
    public func dropWatches() -> Int {
        shared.store.endWatches(with: .drop)
    }

    /// Whether a watch from a compacted resourceVersion gets a 410 response (true) or, as by
    /// default, a 200 stream whose only event is an ERROR with a 410 Status.
    public var watchExpiryAsResponse: Bool {
        get { shared.watchExpiryAsResponse }
        set { shared.watchExpiryAsResponse = newValue }
    }

    /// Sends a BOOKMARK at the current resourceVersion to every watch that allows them.
    public func sendBookmarks() {
        shared.store.sendBookmarks()
    }

    /// How many watches are open.
    public var openWatchCount: Int { shared.store.watcherCount }

    // MARK: Access

    /// Replaces the accepted bearer tokens (a rotation); an empty set accepts everything.
    public func setTokens(_ tokens: Set<String>) {
        shared.setTokens(tokens)
    }

    /// Takes away (or gives back) the permission `verb` (`get`, `list`, `watch`) on `resource`.
    public func setForbidden(verb: String, resource: ServedResource, _ forbidden: Bool = true) {
        shared.setDenied(verb: verb, resource: resource.plural, forbidden)
    }

    /// The requests received so far, oldest first.
    public var requests: [RecordedRequest] { shared.requests }
}

extension StandInAPIServer {
    /// Loads the objects of a JSON file: a List (`items`) or one object; each object's `kind`
    /// names its resource. Returns how many were loaded.
    public func load(file: String) throws(StandInError) -> Int {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw .badObject("\(file): cannot be read")
        }
        let reader = JSONBytes(bytes: [UInt8](data))
        let objects: [Range<Int>]
        do throws(JSONBytesError) {
            let root = try reader.rootMembers()
            if let items = root.last(where: { $0.key == "items" }) {
                guard let elements = try reader.elements(of: items.value) else {
                    throw JSONBytesError(offset: items.value.lowerBound, problem: "items is not an array")
                }
                objects = elements
            } else {
                // The root object, without the whitespace around it.
                let isSpace: (UInt8) -> Bool = { [0x20, 0x0A, 0x0D, 0x09].contains($0) }
                let start = reader.bytes.firstIndex(where: { !isSpace($0) }) ?? 0
                let end = (reader.bytes.lastIndex(where: { !isSpace($0) }) ?? -1) + 1
                objects = [start..<end]
            }
        } catch {
            throw .badObject("\(file): not a JSON object: \(error)")
        }
        for (index, range) in objects.enumerated() {
            let kindRange = (try? reader.members(of: range))?.last(where: { $0.key == "kind" })?.value
            let kind = kindRange.flatMap { try? reader.string(at: $0) } ?? ""
            guard let resource = ServedResource.all.first(where: { $0.kind == kind }) else {
                throw .unknownResource("\(file): items[\(index)]: kind \"\(kind)\" is not served")
            }
            do throws(StandInError) {
                shared.store.put(try IncomingObject(resource: resource, json: Array(reader.bytes[range])))
            } catch {
                throw .badObject("\(file): items[\(index)]: \(error)")
            }
        }
        return objects.count
    }
}
