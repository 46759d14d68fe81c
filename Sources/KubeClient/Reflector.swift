/// Keeps a consumer in step with one resource collection, as client-go's reflector does:
/// a complete (paged) list, then a watch from the list's resourceVersion, re-watched from the
/// last seen resourceVersion when the stream ends or breaks, and re-listed when the server
/// says that resourceVersion is gone (410 Expired, in the stream or as a response). Errors
/// are retried after a capped, jittered backoff; every restart is reported with its reason.
public struct Reflector: Sendable {
    /// What to follow and how.
    public struct Options: Sendable, Equatable {
        /// The collection path, e.g. `/apis/discovery.k8s.io/v1/endpointslices`.
        public var path: String
        /// `labelSelector` of the list and the watch.
        public var labelSelector: String?
        /// `fieldSelector` of the list and the watch.
        public var fieldSelector: String?
        /// Items per list page.
        public var pageSize: Int
        /// Base of the watch's `timeoutSeconds`; each watch asks for a random value between
        /// this and twice this, as client-go does, so watches of many nodes do not end together.
        public var watchTimeoutSeconds: Int
        /// Ask for BOOKMARK events.
        public var allowWatchBookmarks: Bool
        /// Delays between retries after errors.
        public var backoff: Backoff

        /// Creates options with client-go's defaults (pages of 500, watches of 5-10 minutes).
        public init(path: String, labelSelector: String? = nil, fieldSelector: String? = nil, pageSize: Int = 500,
                    watchTimeoutSeconds: Int = 300, allowWatchBookmarks: Bool = true, backoff: Backoff = Backoff()) {
            self.path = path
            self.labelSelector = labelSelector
            self.fieldSelector = fieldSelector
            self.pageSize = pageSize
            self.watchTimeoutSeconds = watchTimeoutSeconds
            self.allowWatchBookmarks = allowWatchBookmarks
            self.backoff = backoff
        }
    }

    /// The client requests go through.
    public let client: KubeAPIClient
    /// What is followed.
    public let options: Options

    /// Creates a reflector; nothing is requested before `events()` is iterated.
    public init(client: KubeAPIClient, options: Options) {
        self.client = client
        self.options = options
    }

    /// The events of the collection, from a first complete list on, until the iteration stops.
    public func events() -> AsyncStream<ReflectorEvent> {
        AsyncStream { continuation in
            let task = Task {
                await run { continuation.yield($0) }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Runs the list-and-watch loop until the task is cancelled, handing each event to `emit`.
    public func run(emit: @Sendable (ReflectorEvent) async -> Void) async {
        await run(listPages: nil, emit: emit)
    }

    /// Runs the list-and-watch loop until the task is cancelled, handing each event to `emit`.
    ///
    /// - Parameter listPages: when given, the items of every list are handed to it page by
    ///   page as they arrive (`first`: the first page of a list, after which the consumer
    ///   forgets earlier pages), and `.listed` then carries no items: it says that the list
    ///   is complete. A consumer that decodes each page never holds the bytes of the whole
    ///   collection at once.
    public func run(listPages: (@Sendable ([RawObject], _ first: Bool) async -> Void)?,
                    emit: @Sendable (ReflectorEvent) async -> Void) async {
        var backoff = options.backoff
        var resourceVersion: String?
        while !Task.isCancelled {
            if resourceVersion == nil {
                do throws(KubeClientError) {
                    let listed: (items: [RawObject], resourceVersion: String)
                    if let listPages {
                        listed = ([], try await client.listAll(options.path, labelSelector: options.labelSelector,
                                                               fieldSelector: options.fieldSelector,
                                                               pageSize: options.pageSize, eachPage: listPages))
                    } else {
                        listed = try await client.listAll(options.path, labelSelector: options.labelSelector,
                                                          fieldSelector: options.fieldSelector, pageSize: options.pageSize)
                    }
                    resourceVersion = listed.resourceVersion
                    backoff.reset()
                    await emit(.listed(items: listed.items, resourceVersion: listed.resourceVersion))
                } catch .cancelled {
                    return
                } catch {
                    let delay = backoff.next()
                    await emit(.failed(error, retryIn: delay))
                    guard await sleep(delay) else { return }
                    continue
                }
            }
            guard let from = resourceVersion else { continue }
            let query = WatchQuery(labelSelector: options.labelSelector, fieldSelector: options.fieldSelector,
                                   resourceVersion: from,
                                   timeoutSeconds: options.watchTimeoutSeconds + Int.random(in: 0...options.watchTimeoutSeconds),
                                   allowWatchBookmarks: options.allowWatchBookmarks)
            var latest = from
            let started = ContinuousClock.now
            do throws(KubeClientError) {
                try await client.watch(options.path, query: query) { event in
                    guard let reported = ReflectorEvent(event) else { return }
                    if let version = reported.resourceVersion, !version.isEmpty { latest = version }
                    await emit(reported)
                }
                resourceVersion = latest
                await emit(.watchEnded(.closedByServer))
                // A server that ends every watch at once must not be asked again in a tight loop.
                if ContinuousClock.now - started < .seconds(1) {
                    guard await sleep(backoff.next()) else { return }
                } else {
                    backoff.reset()
                }
            } catch .cancelled {
                return
            } catch .expired(_, let message) {
                resourceVersion = nil
                await emit(.relisting(.expired(message)))
            } catch {
                resourceVersion = latest
                let delay = backoff.next()
                await emit(.failed(error, retryIn: delay))
                guard await sleep(delay) else { return }
            }
        }
    }

    /// Sleeps `delay`; false when the task was cancelled meanwhile.
    private func sleep(_ delay: Duration) async -> Bool {
        do {
            try await Task.sleep(for: delay)
            return true
        } catch {
            return false
        }
    }
}

/// What a reflector reports.
public enum ReflectorEvent: Sendable, Equatable {
    /// A complete list (all pages): the collection's whole state at `resourceVersion`. Comes
    /// first, and again after every re-list; the consumer replaces what it had. Empty when
    /// the items went to a page consumer (`run(listPages:emit:)`).
    case listed(items: [RawObject], resourceVersion: String)
    case added(RawObject)
    case modified(RawObject)
    case deleted(RawObject)
    /// The watch has reached `resourceVersion` with nothing to report.
    case bookmark(resourceVersion: String)
    /// The watch ended without an error (the server's timeout); it is restarted from the last
    /// resourceVersion, at once unless it lasted less than a second (then after a backoff).
    case watchEnded(WatchEndReason)
    /// The resourceVersion is gone; a new list follows at once.
    case relisting(RelistReason)
    /// A request failed (`error.statusCode` tells the HTTP code, if any); the list or watch is
    /// tried again after `retryIn`.
    case failed(KubeClientError, retryIn: Duration)

    /// The reflector's event for a watch event; nil for ERROR events, which the client
    /// turns into errors before they get here.
    init?(_ event: WatchEvent) {
        switch event {
        case .added(let object): self = .added(object)
        case .modified(let object): self = .modified(object)
        case .deleted(let object): self = .deleted(object)
        case .bookmark(let resourceVersion): self = .bookmark(resourceVersion: resourceVersion)
        case .error: return nil
        }
    }

    /// The resourceVersion a watch event carries (nil for the other events).
    var resourceVersion: String? {
        switch self {
        case .added(let object), .modified(let object), .deleted(let object): return object.resourceVersion
        case .bookmark(let resourceVersion): return resourceVersion
        default: return nil
        }
    }
}

/// Why a watch ended without an error.
public enum WatchEndReason: Sendable, Equatable {
    /// The server closed the stream (normally its `timeoutSeconds`).
    case closedByServer
}

/// Why a re-list happens.
public enum RelistReason: Sendable, Equatable {
    /// 410 Expired: the watch's resourceVersion was compacted (message from the server).
    case expired(String)
}
