import Foundation
import KubeAPIStandIn
import KubeClient
import XCTest

/// KubeClient over HTTPS against the stand-in: paging, watches with bookmarks, 410 in the
/// stream and as a response, dropped connections, token rotation, 403, and a wrong CA.
final class KubeClientAgainstStandInTests: XCTestCase {
    private var fixture: StandInFixture!
    private var client: KubeAPIClient!
    /// Every client a test made: `tearDown` shuts each down, also after a failed or thrown
    /// assertion (an HTTP client released without `shutdown()` would abort the whole process).
    private var clients: [KubeAPIClient] = []

    override func setUp() async throws {
        fixture = try await StandInFixture()
        client = try makeClient()
    }

    override func tearDown() async throws {
        for made in clients { try? await made.shutdown() }
        clients = []
        client = nil
        await fixture?.shutdown()
    }

    private func makeClient(idleTimeout: Duration = .seconds(30)) throws -> KubeAPIClient {
        try makeClient(connection: try Kubeconfig.load(path: fixture.kubeconfig),
                       options: .init(connectTimeout: .seconds(5), idleTimeout: idleTimeout))
    }

    /// A client that `tearDown` shuts down.
    private func makeClient(connection: ClusterConnection, options: KubeAPIClient.Options = .init()) throws -> KubeAPIClient {
        let made = try KubeAPIClient(connection: connection, options: options)
        clients.append(made)
        return made
    }

    private func reflector(_ path: String = ServedResource.services.collectionPath, pageSize: Int = 500) -> Reflector {
        Reflector(client: client, options: .init(
            path: path, pageSize: pageSize, watchTimeoutSeconds: 60,
            backoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(200))))
    }

    func testPagedListReturnsEveryItemOnceAtOneResourceVersion() async throws {
        for index in 0..<7 {
            try fixture.server.put(.services, object: Objects.service(index % 2 == 0 ? "a" : "b", "svc-\(index)"))
        }
        let first = try await client.list("/api/v1/services", query: ListQuery(limit: 3))
        XCTAssertEqual(first.items.count, 3)
        XCTAssertEqual(first.remainingItemCount, 4)
        XCTAssertNotNil(first.continueToken)
        XCTAssertEqual(first.kind, "ServiceList")
        XCTAssertEqual(first.items.first?.kind, "Service")
        // A change between pages does not show in the pages of the snapshot.
        try fixture.server.put(.services, object: Objects.service("a", "svc-late"))
        let listed = try await client.listAll("/api/v1/services", pageSize: 3)
        XCTAssertEqual(listed.items.count, 8)
        XCTAssertEqual(Set(listed.items.map(\.key)).count, 8)
        XCTAssertEqual(listed.resourceVersion, String(fixture.server.resourceVersion))
        var query = ListQuery(limit: 3, continueToken: first.continueToken)
        let second = try await client.list("/api/v1/services", query: query)
        XCTAssertEqual(second.resourceVersion, first.resourceVersion)
        XCTAssertFalse(second.items.contains { $0.name == "svc-late" })
        // Once the history is compacted, the old snapshot's continue token is a 410 response.
        fixture.server.compact()
        query.continueToken = second.continueToken
        do throws(KubeClientError) {
            _ = try await client.list("/api/v1/services", query: query)
            XCTFail("an expired continue token must fail")
        } catch {
            guard case .expired(let request, let message) = error else { return XCTFail("expected 410, got \(error)") }
            XCTAssertEqual(request.verb, "list")
            XCTAssertTrue(message.contains("continue parameter is too old"), message)
        }
        let selected = try await client.listAll("/api/v1/services", fieldSelector: "metadata.namespace=b", pageSize: 2)
        XCTAssertEqual(selected.items.map(\.key).sorted(), ["b/svc-1", "b/svc-3", "b/svc-5"])
    }

    func testPagesAreHandedOnInOrderWhileTheNextIsFetchedAndAnExpiredTokenStartsOver() async throws {
        for index in 0..<7 {
            try fixture.server.put(.services, object: Objects.service("a", "svc-\(index)"))
        }
        let server = fixture.server
        var pages: [(keys: [String], first: Bool)] = []
        let version = try await client.listAll("/api/v1/services", pageSize: 2) { items, first in
            pages.append((items.map(\.key), first))
            // While the first page is consumed, the list's snapshot is compacted away: a later
            // page's continue token is refused (410) and the list starts over, once.
            if pages.count == 1 {
                do { try server.put(.services, object: Objects.service("a", "svc-late")) } catch { XCTFail("\(error)") }
                server.compact()
            }
        }
        XCTAssertEqual(pages.filter(\.first).count, 2, "\(pages)")
        XCTAssertTrue(pages.first?.first ?? false)
        let restart = try XCTUnwrap(pages.lastIndex(where: \.first))
        let after = pages[restart...].flatMap(\.keys)
        XCTAssertEqual(after, ((0..<7).map { "a/svc-\($0)" } + ["a/svc-late"]).sorted())
        XCTAssertEqual(version, String(server.resourceVersion))
    }

    func testReflectorListsThenWatchesEventsAndBookmarks() async throws {
        try fixture.server.put(.services, object: Objects.service("default", "web"))
        let events = EventLog()
        let task = events.follow(reflector(pageSize: 1))
        defer { task.cancel() }
        await eventually(10, "first list and watch") { events.count >= 1 && fixture.server.openWatchCount == 1 }
        try fixture.server.put(.services, object: Objects.service("default", "db"))
        try fixture.server.put(.services, object: Objects.service("default", "db", port: 5432))
        try fixture.server.delete(.services, namespace: "default", name: "web")
        fixture.server.sendBookmarks()
        await eventually(10, "four watch events") { events.count >= 5 }
        let seen = events.all
        guard case .listed(let items, let version) = seen[0] else { return XCTFail("\(seen)") }
        XCTAssertEqual(items.map(\.key), ["default/web"])
        XCTAssertEqual(version, "2")
        XCTAssertEqual(seen[1...4].map(Self.summary), ["added default/db 3", "modified default/db 4", "deleted default/web 5", "bookmark 5"])
        let watch = fixture.server.requests.last { $0.query["watch"] == "true" }
        XCTAssertEqual(watch?.query["allowWatchBookmarks"], "true")
        XCTAssertEqual(watch?.query["resourceVersion"], "2")
        XCTAssertNotNil(watch?.query["timeoutSeconds"])
    }

    func testExpiredInsideTheStreamMakesAFreshList() async throws {
        try fixture.server.put(.services, object: Objects.service("default", "web"))
        let events = EventLog()
        let task = events.follow(reflector())
        defer { task.cancel() }
        await eventually(10, "watch open") { fixture.server.openWatchCount == 1 }
        try fixture.server.put(.services, object: Objects.service("default", "db"))
        XCTAssertEqual(fixture.server.expireWatches(), 1)
        await eventually(10, "re-list") { events.all.filter { if case .listed = $0 { return true } else { return false } }.count == 2 }
        let seen = events.all.map(Self.summary)
        XCTAssertEqual(seen, ["listed default/web @2", "added default/db 3", "relisting expired", "listed default/db,default/web @3"])
    }

    func testWatchFromACompactedResourceVersionIsExpiredInTheStreamOrAsAResponse() async throws {
        try fixture.server.put(.services, object: Objects.service("default", "web"))
        try fixture.server.put(.services, object: Objects.service("default", "web", port: 81))
        fixture.server.compact()
        for asResponse in [false, true] {
            fixture.server.watchExpiryAsResponse = asResponse
            do throws(KubeClientError) {
                try await client.watch("/api/v1/services", query: WatchQuery(resourceVersion: "2", timeoutSeconds: 5)) { _ in }
                XCTFail("a watch from a compacted resourceVersion must fail")
            } catch {
                guard case .expired(let request, let message) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(request.verb, "watch")
                XCTAssertEqual(message, "too old resource version: 2 (3)")
            }
        }
    }

    func testWatchEndedByTheServersTimeoutIsResumedWithoutRelisting() async throws {
        let events = EventLog()
        let task = events.follow(Reflector(client: client, options: .init(
            path: ServedResource.services.collectionPath, watchTimeoutSeconds: 1,
            backoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(200)))))
        defer { task.cancel() }
        await eventually(10, "watch open") { fixture.server.openWatchCount == 1 }
        try fixture.server.put(.services, object: Objects.service("default", "web"))
        await eventually(10, "the watch ended by the server and resumed") {
            events.all.map(Self.summary).contains("watch ended") && fixture.server.openWatchCount == 1
        }
        try fixture.server.put(.services, object: Objects.service("default", "db"))
        await eventually(10, "added after resume") { events.all.map(Self.summary).contains("added default/db 3") }
        XCTAssertEqual(events.all.map(Self.summary).filter { !$0.hasPrefix("watch ended") },
                       ["listed  @1", "added default/web 2", "added default/db 3"])
        let watches = fixture.server.requests.filter { $0.query["watch"] == "true" }
        XCTAssertEqual(Array(watches.prefix(2).map { $0.query["resourceVersion"] ?? "" }), ["1", "2"])
        XCTAssertTrue(watches.allSatisfy { ["1", "2"].contains($0.query["timeoutSeconds"] ?? "") })
    }

    func testDroppedStreamReconnectsFromTheLastResourceVersionWithoutRelisting() async throws {
        let events = EventLog()
        let task = events.follow(reflector())
        defer { task.cancel() }
        let changes = { events.all.map(Self.summary).filter { !$0.hasPrefix("failed") } }
        let failures = { events.all.map(Self.summary).filter { $0.hasPrefix("failed") } }
        await eventually(10, "watch open") { fixture.server.openWatchCount == 1 }
        try fixture.server.put(.services, object: Objects.service("default", "web"))
        await eventually(10, "added") { changes().count == 2 }
        XCTAssertEqual(fixture.server.dropWatches(), 1)
        await eventually(10, "watch open again") { fixture.server.openWatchCount == 1 && !failures().isEmpty }
        try fixture.server.put(.services, object: Objects.service("default", "db"))
        await eventually(10, "added after reconnect") { changes().count == 3 }
        // A restart of the server cuts the stream too.
        try await fixture.server.restart()
        await eventually(10, "watch open after restart") { fixture.server.openWatchCount == 1 && failures().count >= 2 }
        try fixture.server.put(.services, object: Objects.service("default", "cache"))
        await eventually(10, "added after restart") { changes().count == 4 }
        XCTAssertEqual(changes(), ["listed  @1", "added default/web 2", "added default/db 3", "added default/cache 4"])
        XCTAssertTrue(failures().allSatisfy { $0 == "failed transport" }, "\(failures())")
        let watches = fixture.server.requests.filter { $0.query["watch"] == "true" }.map { $0.query["resourceVersion"] ?? "" }
        XCTAssertEqual(watches, ["1", "2", "3"])
    }

    func testRotatedTokenFileIsUsedByTheNextRequest() async throws {
        fixture.server.setTokens(["token-2"])
        let events = EventLog()
        let task = events.follow(reflector())
        defer { task.cancel() }
        await eventually(10, "401 reported") { events.count >= 1 }
        guard case .failed(let error, let delay) = events.all[0] else { return XCTFail("\(events.all)") }
        XCTAssertEqual(error.statusCode, 401)
        XCTAssertLessThanOrEqual(delay, .milliseconds(200))
        XCTAssertTrue(error.description.contains("401 Unauthorized on list /api/v1/services"), error.description)
        try Data("token-2\n".utf8).write(to: URL(fileURLWithPath: fixture.tokenFile))
        await eventually(10, "listed with the new token") { events.all.contains { if case .listed = $0 { return true } else { return false } } }
        let tokens = fixture.server.requests.map { $0.token ?? "" }
        XCTAssertEqual(tokens.first, "token-1")
        XCTAssertEqual(tokens.last, "token-2")
        XCTAssertEqual(Set(tokens), ["token-1", "token-2"])
    }

    func testForbiddenNamesTheMissingPermission() async throws {
        fixture.server.setForbidden(verb: "list", resource: .endpointSlices)
        do throws(KubeClientError) {
            _ = try await client.listAll(ServedResource.endpointSlices.collectionPath)
            XCTFail("must be forbidden")
        } catch {
            XCTAssertEqual(error.statusCode, 403)
            XCTAssertTrue(error.description.contains(#"missing permission "list" on endpointslices in API group "discovery.k8s.io""#),
                          error.description)
        }
    }

    func testIdleTimeoutNoticesASilentConnection() async throws {
        let quick = try makeClient(idleTimeout: .milliseconds(300))
        do throws(KubeClientError) {
            try await quick.watch("/api/v1/services", query: WatchQuery(resourceVersion: "1")) { _ in }
            XCTFail("a silent watch must time out")
        } catch {
            guard case .idleTimeout = error else { return XCTFail("\(error)") }
        }
        // Bookmarks keep a quiet watch alive.
        await fixture.shutdown()
        fixture = try await StandInFixture(bookmarkInterval: .milliseconds(50))
        let kept = try makeClient(connection: try Kubeconfig.load(path: fixture.kubeconfig),
                                  options: .init(idleTimeout: .milliseconds(300)))
        let bookmarks = Counter()
        try await kept.watch("/api/v1/services", query: WatchQuery(resourceVersion: "1", timeoutSeconds: 1)) { event in
            if case .bookmark = event { bookmarks.increment() }
        }
        XCTAssertGreaterThan(bookmarks.value, 3)
    }

    func testClientCertificateAuthenticatesWithoutAToken() async throws {
        try fixture.server.put(.services, object: Objects.service("default", "web"))
        let connection = try Kubeconfig.load(path: try fixture.kubeconfigWithClientCertificate())
        XCTAssertNil(connection.credentials.token)
        XCTAssertNil(connection.credentials.tokenFile)
        XCTAssertNotNil(connection.credentials.clientCertificatePEM)
        let certified = try makeClient(connection: connection)
        let page = try await certified.list("/api/v1/services", query: ListQuery())
        XCTAssertEqual(page.items.map(\.key), ["default/web"])
        XCTAssertNil(fixture.server.requests.last?.token)
        var anonymous = connection
        anonymous.credentials = Credentials()
        let bare = try makeClient(connection: anonymous)
        do throws(KubeClientError) {
            _ = try await bare.list("/api/v1/services", query: ListQuery())
            XCTFail("neither token nor certificate must be 401")
        } catch {
            XCTAssertEqual(error.statusCode, 401, "\(error)")
        }
    }

    func testInsecureSkipTLSVerifyConnectsWithoutTheCA() async throws {
        var connection = try Kubeconfig.load(path: fixture.kubeconfig)
        connection.certificateAuthorityPEM = nil
        connection.insecureSkipTLSVerify = true
        let insecure = try makeClient(connection: connection)
        let page = try await insecure.list("/api/v1/services", query: ListQuery())
        XCTAssertEqual(page.resourceVersion, "1")
        // Without the CA and without the flag, the system trust store does not know the test CA.
        connection.insecureSkipTLSVerify = false
        let verifying = try makeClient(connection: connection, options: .init(connectTimeout: .seconds(1)))
        do throws(KubeClientError) {
            _ = try await verifying.list("/api/v1/services", query: ListQuery())
            XCTFail("an unknown CA must be refused")
        } catch {
            guard case .tls = error else { return XCTFail("expected a TLS error, got \(error)") }
        }
    }

    func testWrongCertificateAuthorityIsRefused() async throws {
        let other = try SharedCertificates.other.get()
        var connection = try Kubeconfig.load(path: fixture.kubeconfig)
        connection.certificateAuthorityPEM = Array(try Data(contentsOf: URL(fileURLWithPath: other.caCertificatePath)))
        // The connection pool retries a failed handshake until the connect timeout, then reports it.
        let untrusting = try makeClient(connection: connection, options: .init(connectTimeout: .seconds(1)))
        do throws(KubeClientError) {
            _ = try await untrusting.list("/api/v1/services", query: ListQuery())
            XCTFail("a server certificate from another CA must be refused")
        } catch {
            guard case .tls = error else { return XCTFail("expected a TLS error, got \(error)") }
        }
        XCTAssertTrue(fixture.server.requests.isEmpty, "no request may reach a server that was not verified")
    }

    private static func summary(_ event: ReflectorEvent) -> String {
        switch event {
        case .listed(let items, let version): return "listed \(items.map(\.key).joined(separator: ",")) @\(version)"
        case .added(let object): return "added \(object.key) \(object.resourceVersion)"
        case .modified(let object): return "modified \(object.key) \(object.resourceVersion)"
        case .deleted(let object): return "deleted \(object.key) \(object.resourceVersion)"
        case .bookmark(let version): return "bookmark \(version)"
        case .watchEnded: return "watch ended"
        case .relisting(.expired): return "relisting expired"
        case .failed(let error, _):
            switch error {
            case .transport: return "failed transport"
            default: return "failed \(error)"
            }
        }
    }
}

/// Reflector events collected by a background task.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [ReflectorEvent] = []

    func follow(_ reflector: Reflector) -> Task<Void, Never> {
        Task {
            for await event in reflector.events() {
                append(event)
            }
        }
    }

    private func append(_ event: ReflectorEvent) {
        lock.withLock { events.append(event) }
    }

    var all: [ReflectorEvent] {
        lock.lock()
        defer { lock.unlock() }
        return events
    }

    var count: Int { all.count }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
