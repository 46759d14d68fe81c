import Foundation
import KubeAPIStandIn
import ServiceModel

/// The stand-in API server of the daemon rows, in this process: it serves the realistic
/// objects of `RealisticCluster` (managedFields, annotations, status, as a real API server
/// stores them) over HTTPS with a token, plus this node's Node object, and makes the
/// single-endpoint changes of the latency rows.
final class StandInCluster {
    let server: StandInAPIServer
    let cluster: RealisticCluster
    let kubeconfigPath: String
    private let directory: String
    static let token = "bench-token"
    static let nodeName = "node-0"
    static let nodeIP = "192.0.2.10"

    /// Starts a server on a free port of 127.0.0.1 and fills it with `cluster`'s objects.
    init(cluster: RealisticCluster, directory: String) throws {
        self.cluster = cluster
        self.directory = directory
        let certificates = try TestCertificates.make(in: directory + "/pki")
        server = try StandInAPIServer(configuration: .init(
            tls: (certificates.serverCertificatePath, certificates.serverKeyPath), tokens: [Self.token],
            historyLimit: 10_000))
        try blocking { [server] in try await server.start() }
        kubeconfigPath = directory + "/kubeconfig"
        try KubeconfigFile.write(to: kubeconfigPath, server: server.url, caPath: certificates.caCertificatePath,
                                 token: Self.token)
        try server.put(.nodes, object: [
            "apiVersion": "v1", "kind": "Node",
            "metadata": ["name": Self.nodeName, "labels": ["topology.kubernetes.io/zone": "eu-west-1a"]],
            "status": ["addresses": [["type": "InternalIP", "address": Self.nodeIP],
                                     ["type": "Hostname", "address": Self.nodeName]]],
        ])
        // As JSON bytes: the stand-in keeps them as they are (no Foundation objects).
        for index in 0..<cluster.workload.services {
            try server.put(.services, json: cluster.service(index).compactJSON)
            try server.put(.endpointSlices, json: cluster.endpointSlice(index).compactJSON)
        }
    }

    func shutdown() {
        try? blocking { [server] in await server.shutdown() }
    }

    /// One endpoint of service `index` replaced, as the EndpointSlice controller writes it
    /// when a pod is replaced: the slice's first endpoint gets `address` (a new pod), the
    /// slice a new generation and `endpoints.kubernetes.io/last-change-trigger-time` now.
    /// Returns the moment the store held it (CLOCK_MONOTONIC, right after the write returned).
    func replaceFirstEndpoint(ofService index: Int, with address: IPAddress, generation: Int) throws -> Double {
        guard var slice = cluster.endpointSlice(index).foundationObject as? [String: Any],
              var endpoints = slice["endpoints"] as? [[String: Any]], !endpoints.isEmpty,
              var metadata = slice["metadata"] as? [String: Any] else {
            throw BenchError("generated slice \(index) has no endpoints")
        }
        endpoints[0]["addresses"] = [address.description]
        if var targetRef = endpoints[0]["targetRef"] as? [String: Any] {
            targetRef["name"] = "\(cluster.name(index))-moved-\(generation)"
            endpoints[0]["targetRef"] = targetRef
        }
        slice["endpoints"] = endpoints
        metadata["generation"] = 100 + generation
        metadata["annotations"] = ["endpoints.kubernetes.io/last-change-trigger-time": Self.rfc3339Nano(Date())]
        slice["metadata"] = metadata
        try server.put(.endpointSlices, object: slice)
        return Clock.now()
    }

    /// RFC 3339 with nanoseconds, as the EndpointSlice controller writes trigger times.
    static func rfc3339Nano(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        let whole = Int(seconds.rounded(.down))
        let nanos = Int(((seconds - Double(whole)) * 1e9).rounded(.down))
        let fraction = String(nanos)
        return RealisticCluster.timestamp(whole).dropLast() + "." + String(repeating: "0", count: 9 - fraction.count)
            + fraction + "Z"
    }
}

extension KubectlValue {
    /// The value as JSONSerialization's objects ([String: Any], [Any], String, Int, Bool).
    var foundationObject: Any {
        switch self {
        case .string(let text): return text
        case .int(let number): return number
        case .bool(let flag): return flag
        case .array(let elements): return elements.map(\.foundationObject)
        case .object(let members):
            var object: [String: Any] = [:]
            for (key, value) in members { object[key] = value.foundationObject }
            return object
        }
    }
}

/// Runs `body` on a task and blocks this thread until it is done.
@discardableResult
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: Result<T, any Error> = .failure(BenchError("task did not finish"))
    Task {
        do { result = .success(try await body()) } catch { result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try result.get()
}
