import Foundation
import KubeClient
import KubeObjects
import Logging
import ServiceModel
import Synchronization

/// Follows the API server for the daemon: Services and EndpointSlices (with kube-proxy's
/// label selector) into the `ClusterState`, this node's Node object into the node
/// configuration and health; every change rings the sync loop. Malformed objects are
/// logged and skipped: the last good version stays, and the next good event replaces it.
public struct ClusterWatch: Sendable {
    public let client: KubeAPIClient
    public let state: ClusterState
    public let loop: SyncLoop
    public let health: ProxyHealth
    public let metrics: ProxyMetrics
    public let logger: Logger
    public let nodeName: String
    /// `--service-proxy-name`: only objects labelled with it; nil: only unlabelled ones.
    public let serviceProxyName: String?
    /// Items per list page.
    public let pageSize: Int
    /// Called with every new version of this node's facts.
    public let nodeChanged: @Sendable (NodeObjectFacts) async -> Void
    /// The objects of the lists in progress, decoded page by page until each list is complete.
    private let listing = ListInProgress()

    public init(client: KubeAPIClient, state: ClusterState, loop: SyncLoop, health: ProxyHealth, metrics: ProxyMetrics,
                logger: Logger, nodeName: String, serviceProxyName: String?, pageSize: Int = 500,
                nodeChanged: @escaping @Sendable (NodeObjectFacts) async -> Void) {
        self.client = client; self.state = state; self.loop = loop; self.health = health; self.metrics = metrics
        self.logger = logger; self.nodeName = nodeName; self.serviceProxyName = serviceProxyName
        self.pageSize = pageSize; self.nodeChanged = nodeChanged
    }

    /// kube-proxy's selector: no headless services, and only this proxy's (by default, those
    /// that name no proxy).
    public var labelSelector: String {
        let headless = "!service.kubernetes.io/headless"
        guard let serviceProxyName else { return "!service.kubernetes.io/service-proxy-name,\(headless)" }
        return "service.kubernetes.io/service-proxy-name=\(serviceProxyName),\(headless)"
    }

    /// Runs the three watches until the task is cancelled.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await follow(resource: "services", path: "/api/v1/services", selector: labelSelector,
                                         apply: applyService) }
            group.addTask { await follow(resource: "endpointslices", path: "/apis/discovery.k8s.io/v1/endpointslices",
                                         selector: labelSelector, apply: applySlice) }
            group.addTask { await followNode() }
        }
    }

    // MARK: Services and EndpointSlices

    /// What a watch delivered: a page of a list (decoded as it arrives, so the bytes of the
    /// whole collection are never held together), the end of the list, or an event.
    private enum Change { case page([KubeObject], first: Bool), listed, set(RawObject), deleted(RawObject) }

    private func follow(resource: String, path: String, selector: String,
                        apply: @escaping @Sendable (Change) -> (ClusterState.ChangeCount, listed: Int)) async {
        let reflector = Reflector(client: client, options: Reflector.Options(
            path: path, labelSelector: selector, pageSize: pageSize))
        await reflector.run(listPages: { items, first in
            _ = apply(.page(await decodePage(items), first: first))
        }) { event in
            var count = ClusterState.ChangeCount()
            switch event {
            case .listed(_, let version):
                let (listedCount, items) = apply(.listed)
                count = listedCount
                logger.info("listed", metadata: ["resource": "\(resource)", "items": "\(items)",
                                                 "resourceVersion": "\(version)"])
            case .added(let object), .modified(let object):
                count = apply(.set(object)).0
            case .deleted(let object):
                count = apply(.deleted(object)).0
            case .bookmark:
                return
            case .watchEnded:
                metrics.watchRestarted(resource: resource, reason: "closed")
                return
            case .relisting(let reason):
                metrics.relisted(resource: resource)
                logger.info("re-listing", metadata: ["resource": "\(resource)", "reason": "\(reason)"])
                return
            case .failed(let error, let delay):
                metrics.apiError(code: error.statusCode ?? 0)
                metrics.watchRestarted(resource: resource, reason: "error")
                logFailure(error, resource: resource, retryIn: delay)
                return
            }
            guard !count.isEmpty else { return }
            let pending = state.pendingChanges
            metrics.changesQueued(services: count.services, endpoints: count.endpointSlices,
                                  pendingServices: pending.services, pendingEndpoints: pending.endpointSlices)
            loop.changesArrived()
        }
    }

    private func logFailure(_ error: KubeClientError, resource: String, retryIn delay: Duration) {
        var metadata: Logger.Metadata = ["resource": "\(resource)", "error": "\(error)", "retryIn": "\(delay)"]
        switch error.statusCode {
        case 401:
            metadata["hint"] = "the API server refused the credentials (token expired or wrong?)"
        case 403:
            metadata["hint"] = "missing permission: list and watch \(resource) (see deploy/daemonset.yaml's ClusterRole)"
        default:
            break
        }
        logger.error("API request failed", metadata: metadata)
    }

    /// Decodes the items of a list page, in parts on as many tasks as there are CPUs (each part
    /// at least `minimumPart` items), in page order; malformed ones are logged and left out.
    /// While one list is decoded alone (the other is complete), it uses every CPU.
    private func decodePage(_ items: [RawObject]) async -> [KubeObject] {
        let parts = min(ProcessInfo.processInfo.activeProcessorCount, items.count / Self.minimumPart)
        guard parts > 1 else { return items.compactMap(decode) }
        let size = (items.count + parts - 1) / parts
        return await withTaskGroup(of: (Int, [KubeObject]).self) { group in
            for start in stride(from: 0, to: items.count, by: size) {
                let part = items[start..<min(start + size, items.count)]
                group.addTask { (start, part.compactMap(decode)) }
            }
            var decoded: [(start: Int, objects: [KubeObject])] = []
            for await part in group { decoded.append(part) }
            return decoded.sorted { $0.start < $1.start }.flatMap(\.objects)
        }
    }

    /// The fewest items decoded on a task of their own.
    private static let minimumPart = 50

    /// Decodes one object; nil (logged) when it is malformed.
    private func decode(_ object: RawObject) -> KubeObject? {
        do {
            // List items carry no kind or apiVersion: the collection says what they are.
            let apiVersion = object.kind == "EndpointSlice" ? "discovery.k8s.io/v1" : "v1"
            // The label selector already chose the services; the decoder must not skip ours.
            let decoded = try KubeObjectDecoder.decodeObject(bytes: object.json, source: "API",
                                                             apiVersion: apiVersion, kind: object.kind,
                                                             serviceProxyName: serviceProxyName)
            // Every event of a skipped object repeats its notice: debug, not notice.
            for notice in decoded.notices { logger.log(notice, level: .debug) }
            return decoded.objects.first
        } catch {
            logger.error("malformed object ignored; its last good version stays", metadata: [
                "kind": "\(object.kind)", "object": "\(object.key)", "error": "\(error)",
            ])
            return nil
        }
    }

    private func applyService(_ change: Change) -> (ClusterState.ChangeCount, listed: Int) {
        switch change {
        case .page(let objects, let first):
            let decoded = objects.compactMap { object -> (ServiceName, Service?)? in
                guard case .service(let name, let service) = object else { return nil }
                return (name, service)
            }
            listing.withLock { listing in
                if first { listing.services = [:] }
                for (name, service) in decoded { listing.services[name] = .some(service) }
            }
            return (ClusterState.ChangeCount(), 0)
        case .listed:
            let services = listing.withLock { listing in
                defer { listing.services = [:] }
                return listing.services
            }
            return (state.replaceServices(services), services.count)
        case .set(let object):
            guard case .service(let name, let service)? = decode(object) else { return (ClusterState.ChangeCount(), 0) }
            return (state.setService(name, service), 0)
        case .deleted(let object):
            return (state.removeService(ServiceName(namespace: object.namespace, name: object.name)), 0)
        }
    }

    private func applySlice(_ change: Change) -> (ClusterState.ChangeCount, listed: Int) {
        switch change {
        case .page(let objects, let first):
            let decoded = objects.compactMap { object -> EndpointSliceObject? in
                guard case .endpointSlice(let slice) = object else { return nil }
                return slice
            }
            listing.withLock { listing in
                if first { listing.slices = [] }
                listing.slices += decoded
            }
            return (ClusterState.ChangeCount(), 0)
        case .listed:
            let slices = listing.withLock { listing in
                defer { listing.slices = [] }
                return listing.slices
            }
            return (state.replaceEndpointSlices(slices), slices.count)
        case .set(let object):
            guard case .endpointSlice(let slice)? = decode(object) else { return (ClusterState.ChangeCount(), 0) }
            return (state.setEndpointSlice(slice), 0)
        case .deleted(let object):
            return (state.removeEndpointSlice(namespace: object.namespace, name: object.name), 0)
        }
    }

    // MARK: The Node

    private func followNode() async {
        let reflector = Reflector(client: client, options: Reflector.Options(
            path: "/api/v1/nodes", fieldSelector: "metadata.name=\(nodeName)", pageSize: pageSize))
        await reflector.run { event in
            let object: RawObject
            switch event {
            case .listed(let items, _):
                guard let first = items.first else {
                    logger.warning("this node's Node object does not exist (yet)", metadata: ["node": "\(nodeName)"])
                    return
                }
                object = first
            case .added(let added), .modified(let added):
                object = added
            case .deleted:
                logger.warning("this node's Node object was deleted", metadata: ["node": "\(nodeName)"])
                health.setNodeEligible(false)
                return
            case .failed(let error, let delay):
                metrics.apiError(code: error.statusCode ?? 0)
                logFailure(error, resource: "nodes", retryIn: delay)
                return
            case .bookmark, .watchEnded, .relisting:
                return
            }
            switch NodeObjectFacts.parse(object.json) {
            case .success(let facts):
                health.setNodeEligible(facts.eligible)
                await nodeChanged(facts)
            case .failure(let error):
                logger.error("malformed Node object ignored", metadata: ["node": "\(nodeName)", "error": "\(error)"])
            }
        }
    }
}

/// The decoded objects of the Service and EndpointSlice lists in progress.
private final class ListInProgress: Sendable {
    struct Objects {
        var services: [ServiceName: Service?] = [:]
        var slices: [EndpointSliceObject] = []
    }

    private let objects = Mutex(Objects())

    func withLock<T: Sendable>(_ body: (inout Objects) -> T) -> T {
        objects.withLock { body(&$0) }
    }
}
