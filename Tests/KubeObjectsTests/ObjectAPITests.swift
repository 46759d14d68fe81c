import KubeObjects
import ServiceModel
import XCTest

/// The entry point for the API client: objects decoded one by one from bytes, then set and
/// removed as watch events would.
final class ObjectAPITests: XCTestCase {
    private let service = Array(#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"}, "spec": {"clusterIP": "198.18.0.1", "ports": [{"name": "http", "port": 80}]}}"#.utf8)
    private func slice(_ address: String) -> [UInt8] {
        Array(#"{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}}, "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}], "endpoints": [{"addresses": ["\#(address)"]}]}"#.utf8)
    }

    func testDecodeSetAndRemove() throws {
        let decodedService = try KubeObjectDecoder.decode(bytes: service, source: "watch")
        guard case .service(let name, let served)? = decodedService.objects.first else { return XCTFail("no service") }
        XCTAssertEqual(name, ServiceName(namespace: "shop", name: "web"))
        XCTAssertEqual(served?.clusterIPs, [ip("198.18.0.1")])

        var decoder = KubeObjectDecoder()
        for object in decodedService.objects { decoder.set(object, source: "watch") }
        for address in ["198.19.0.1", "198.19.0.2"] {  // the second replaces the first, without a warning
            let decoded = try KubeObjectDecoder.decode(bytes: slice(address), source: "watch")
            guard case .endpointSlice(let object)? = decoded.objects.first else { return XCTFail("no slice") }
            XCTAssertEqual(object.service, name)
            XCTAssertEqual(object.endpointCount, 1)
            decoder.set(.endpointSlice(object), source: "watch")
        }
        var (map, warnings) = try decoder.serviceMap()
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(map.services.first?.ports.first?.endpoints.map(\.address), [ip("198.19.0.2")])

        decoder.removeEndpointSlice(namespace: "shop", name: "web-1")
        (map, warnings) = try decoder.serviceMap()
        XCTAssertEqual(map.services.first?.ports.first?.endpoints, [])
        decoder.removeService(name)
        XCTAssertEqual(try decoder.serviceMap().0.services, [])
    }

    func testAPageOfAListAndItsErrors() throws {
        let page = Array(#"{"apiVersion": "v1", "kind": "ServiceList", "metadata": {"continue": "abc"}, "items": ["#.utf8)
            + service + Array(#"]}"#.utf8)
        XCTAssertEqual(try KubeObjectDecoder.decode(bytes: page, source: "page").objects.count, 1)
        XCTAssertThrowsError(try KubeObjectDecoder.decode(bytes: Array(page.dropLast()), source: "page")) { error in
            XCTAssertEqual((error as? InputError)?.description,
                           "page: invalid JSON: line 1, column \(page.count): expected ',' or '}' in an object, found end of input")
        }
    }
}
