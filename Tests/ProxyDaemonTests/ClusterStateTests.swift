import Foundation
import KubeObjects
import ProxyDaemon
import ServiceModel
import XCTest

/// The watch caches: nothing before both lists, then snapshots equal to what `-f` input of
/// the same objects gives, with only the concerned services named as changed.
final class ClusterStateTests: XCTestCase {
    private func objects(_ yaml: String) throws -> [KubeObject] {
        try KubeObjectDecoder.decode(bytes: Array(yaml.utf8), source: "test").objects
    }

    private func service(_ name: String, ip: String, nodePort: Int? = nil) -> String {
        """
        apiVersion: v1
        kind: Service
        metadata: {name: \(name), namespace: default}
        spec:
          type: \(nodePort == nil ? "ClusterIP" : "NodePort")
          clusterIP: \(ip)
          ports: [{name: http, port: 80, protocol: TCP\(nodePort.map { ", nodePort: \($0)" } ?? "")}]
        ---

        """
    }

    private func slice(_ name: String, service: String, addresses: [String]) -> String {
        """
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: \(name), namespace: default, labels: {kubernetes.io/service-name: \(service)}}
        addressType: IPv4
        ports: [{name: http, port: 8080, protocol: TCP}]
        endpoints: [\(addresses.map { "{addresses: [\($0)], conditions: {ready: true}}" }.joined(separator: ", "))]
        ---

        """
    }

    private func split(_ decoded: [KubeObject]) -> ([ServiceName: Service?], [EndpointSliceObject]) {
        var services: [ServiceName: Service?] = [:]
        var slices: [EndpointSliceObject] = []
        for object in decoded {
            switch object {
            case .service(let name, let service): services[name] = .some(service)
            case .endpointSlice(let slice): slices.append(slice)
            }
        }
        return (services, slices)
    }

    func testSnapshotsMatchTheFileInputAndNameOnlyWhatChanged() throws {
        let yaml = service("web", ip: "198.18.0.10", nodePort: 30080) + service("api", ip: "198.18.0.11")
            + slice("web-1", service: "web", addresses: ["198.19.1.11", "198.19.1.12"])
            + slice("web-2", service: "web", addresses: ["198.19.1.13"])
            + slice("api-1", service: "api", addresses: ["198.19.1.21"])
        let (services, slices) = split(try objects(yaml))
        let state = ClusterState()
        XCTAssertEqual(state.replaceServices(services), ClusterState.ChangeCount(services: 2))
        XCTAssertNil(state.takeSnapshot(), "ready before the EndpointSlices were listed")
        XCTAssertFalse(state.hasPendingChanges)
        _ = state.replaceEndpointSlices(slices)
        XCTAssertTrue(state.hasPendingChanges)

        var decoder = KubeObjectDecoder()
        try decoder.add(contents: yaml, source: "test")
        let first = try XCTUnwrap(state.takeSnapshot())
        XCTAssertEqual(first.map, try decoder.serviceMap().0)
        XCTAssertNil(first.changed, "the first snapshot compares everything")
        XCTAssertFalse(state.hasPendingChanges)

        // One slice of web changes: only web is named, and the map is the file's again.
        let moved = slice("web-2", service: "web", addresses: ["198.19.1.14"])
        guard case .endpointSlice(let movedSlice) = try XCTUnwrap(objects(moved).first) else { return XCTFail() }
        XCTAssertEqual(state.setEndpointSlice(movedSlice), ClusterState.ChangeCount(endpointSlices: 1))
        let second = try XCTUnwrap(state.takeSnapshot())
        XCTAssertEqual(second.changed, [ServiceName(namespace: "default", name: "web")])
        var again = KubeObjectDecoder()
        try again.add(contents: yaml.replacingOccurrences(of: "198.19.1.13", with: "198.19.1.14"), source: "test")
        XCTAssertEqual(second.map, try again.serviceMap().0)

        // api goes; its slice stays but serves nothing.
        _ = state.removeService(ServiceName(namespace: "default", name: "api"))
        let third = try XCTUnwrap(state.takeSnapshot())
        XCTAssertEqual(third.changed, [ServiceName(namespace: "default", name: "api")])
        XCTAssertEqual(third.map.services.map(\.name.name), ["web"])

        // A failed sync puts its changes back.
        _ = state.removeEndpointSlice(namespace: "default", name: "web-1")
        let fourth = try XCTUnwrap(state.takeSnapshot())
        state.restore(fourth)
        XCTAssertEqual(try XCTUnwrap(state.takeSnapshot()).changed, [ServiceName(namespace: "default", name: "web")])
        XCTAssertEqual(state.removeEndpointSlice(namespace: "default", name: "web-1"), ClusterState.ChangeCount(),
                       "deleting what is gone is no change")
    }

    /// The cache of served services is updated in place (a binary search per change, a merge
    /// for many): through lists, re-lists and single adds, changes and deletes, every
    /// snapshot holds exactly the services a fresh sort of the objects gives.
    func testSnapshotsEqualASortOfTheObjectsThroughManyAndFewChanges() throws {
        func service(_ index: Int, port: UInt16 = 80) -> Service {
            Service(name: ServiceName(namespace: "ns-\(index % 7)", name: "svc-\(index)"),
                    clusterIPs: [IPAddress("198.18.\(index / 250).\(index % 250 + 1)")!],
                    ports: [ServicePort(name: "http", transport: .tcp, port: port)])
        }
        let state = ClusterState()
        var expected: [ServiceName: Service] = [:]
        func check(_ what: String) throws {
            let snapshot = try XCTUnwrap(state.takeSnapshot(), what)
            XCTAssertEqual(snapshot.map.services, ServiceMap(services: Array(expected.values)).services, what)
        }
        var listed: [ServiceName: Service?] = [:]
        for index in stride(from: 0, to: 300, by: 2) { listed[service(index).name] = .some(service(index)); expected[service(index).name] = service(index) }
        _ = state.replaceServices(listed)
        _ = state.replaceEndpointSlices([])
        try check("first list (merged)")

        for step in 0..<200 {
            let index = (step * 37 + 11) % 320
            let name = service(index).name
            if expected[name] != nil && step % 3 == 0 {
                _ = state.removeService(name)
                expected[name] = nil
            } else {
                let changed = service(index, port: UInt16(80 + step))
                _ = state.setService(name, changed)
                expected[name] = changed
            }
            try check("step \(step): service \(index)")
        }

        // A re-list with many services gone and many new: merged in one pass.
        listed = [:]
        expected = [:]
        for index in stride(from: 1, to: 400, by: 3) { listed[service(index).name] = .some(service(index)); expected[service(index).name] = service(index) }
        _ = state.replaceServices(listed)
        try check("re-list")
    }
}
