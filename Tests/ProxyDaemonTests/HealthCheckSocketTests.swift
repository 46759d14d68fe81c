import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import ProxyDaemon
import ServiceModel
import Synchronization
import XCTest

/// A real health-check server on loopback (the process's own namespace), read over HTTP.
final class HealthCheckSocketTests: XCTestCase {
    /// A port the kernel just had free on 127.0.0.1.
    private func freePort() async throws -> UInt16 {
        let probe = try await HTTPEndpointServer.start(host: "127.0.0.1", port: 0) { _, _ in HTTPReply(status: .ok, body: "") }
        let port = try XCTUnwrap(probe.localAddress?.port)
        await probe.close()
        return UInt16(port)
    }

    func testServesEveryPathAndRefusesAPortInUse() async throws {
        let port = try await freePort()
        let listening = NamespaceHealthCheckListening(namespace: nil)
        let count = Mutex(1)
        let listener = try await listening.listen(port: port, hosts: ["127.0.0.1"]) { _, _ in
            HealthCheckNodePorts.reply(service: ServiceName(namespace: "default", name: "web"),
                                       localEndpoints: count.withLock { $0 }, proxyHealthy: true)
        }

        for (path, expected) in [("/healthz", 200), ("/anything/else?x=1", 200)] {
            let url = try XCTUnwrap(URL(string: "http://127.0.0.1:\(port)\(path)"))
            let (data, response) = try await URLSession.shared.data(from: url)
            let http = try XCTUnwrap(response as? HTTPURLResponse)
            XCTAssertEqual(http.statusCode, expected, path)
            XCTAssertEqual(http.value(forHTTPHeaderField: "X-Load-Balancing-Endpoint-Weight"), "1")
            XCTAssertEqual(http.value(forHTTPHeaderField: "Content-Type"), "application/json")
            XCTAssertEqual(http.value(forHTTPHeaderField: "X-Content-Type-Options"), "nosniff")
            let body = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
            XCTAssertEqual(body["localEndpoints"] as? Int, 1)
            XCTAssertEqual(body["serviceProxyHealthy"] as? Bool, true)
        }
        count.withLock { $0 = 0 }
        let (_, response) = try await URLSession.shared.data(from: try XCTUnwrap(URL(string: "http://127.0.0.1:\(port)/")))
        XCTAssertEqual((response as? HTTPURLResponse)?.statusCode, 503)

        do {
            _ = try await listening.listen(port: port, hosts: ["127.0.0.1"]) { _, _ in HTTPReply(status: .ok, body: "") }
            XCTFail("a second server bound the same port")
        } catch let error as HealthCheckListenError {
            XCTAssertEqual(error.port, port)
            XCTAssertTrue(error.description.hasPrefix("cannot listen on 127.0.0.1:\(port): bind: "), error.description)
        }

        await listener.close()
        let closed = URLSession.shared
        do {
            _ = try await closed.data(from: try XCTUnwrap(URL(string: "http://127.0.0.1:\(port)/")))
            XCTFail("still answering after close")
        } catch {}
        XCTAssertFalse(try listening.localAddresses().isEmpty, "the namespace has addresses (at least loopback)")
    }
}
