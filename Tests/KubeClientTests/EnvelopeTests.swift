import XCTest
@testable import KubeClient

final class EnvelopeTests: XCTestCase {
    private let service = #"{"kind":"Service","apiVersion":"v1","metadata":{"name":"web","namespace":"default","resourceVersion":"12","labels":{"a":"{}\"]"}},"spec":{"ports":[{"port":80}],"clusterIP":"10.0.0.1"}}"#

    func testEventsSplitAcrossChunksAndSeveralPerChunk() throws {
        let bookmark = #"{"type":"BOOKMARK","object":{"kind":"Service","apiVersion":"v1","metadata":{"resourceVersion":"15"}}}"#
        let stream = Array(#"{"type":"ADDED","object":\#(service)}"#.utf8) + [10]
            + Array(bookmark.utf8) + [10] + Array(#"{"type":"DELETED","object":\#(service)}"#.utf8) + [10]
        for chunkSize in [1, 2, 7, 64, stream.count] {
            var splitter = WatchEventSplitter()
            var events: [WatchEvent] = []
            var start = 0
            while start < stream.count {
                let end = min(stream.count, start + chunkSize)
                for bytes in try splitter.append(stream[start..<end]) {
                    events.append(try JSONEnvelope.watchEvent(bytes))
                }
                start = end
            }
            XCTAssertEqual(events.count, 3, "chunk size \(chunkSize)")
            guard events.count == 3, case .added(let added) = events[0], case .deleted(let deleted) = events[2] else {
                return XCTFail("chunk size \(chunkSize): \(events)")
            }
            XCTAssertEqual(String(decoding: added.json, as: UTF8.self), service)
            XCTAssertEqual(added.kind, "Service")
            XCTAssertEqual(added.key, "default/web")
            XCTAssertEqual(added.resourceVersion, "12")
            XCTAssertEqual(deleted.name, "web")
            XCTAssertEqual(events[1], .bookmark(resourceVersion: "15"))
            XCTAssertEqual(splitter.bufferedByteCount, 0)
        }
    }

    func testEventsWithoutNewlinesAreSplitToo() throws {
        var splitter = WatchEventSplitter()
        let text = #"{"type":"ADDED","object":\#(service)}{"type":"MODIFIED","object":\#(service)}"#
        let events = try splitter.append(Array(text.utf8))
        XCTAssertEqual(events.count, 2)
    }

    func testExpiredErrorEvent() throws {
        let text = #"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 5 (9)","reason":"Expired","code":410}}"#
        XCTAssertEqual(try JSONEnvelope.watchEvent(Array(text.utf8)),
                       .error(APIStatus(code: 410, reason: "Expired", message: "too old resource version: 5 (9)")))
    }

    func testListPageKeepsItemBytesAndTakesKindFromTheList() throws {
        let item = #"{"metadata":{"name":"n\u00e9","resourceVersion":"7"},"spec":{}}"#
        let text = #"{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"20","continue":"abc","remainingItemCount":3},"items":[\#(item), \#(item)]}"#
        let page = try JSONEnvelope.listPage(Array(text.utf8))
        XCTAssertEqual(page.kind, "NodeList")
        XCTAssertEqual(page.resourceVersion, "20")
        XCTAssertEqual(page.continueToken, "abc")
        XCTAssertEqual(page.remainingItemCount, 3)
        XCTAssertEqual(page.items.count, 2)
        XCTAssertEqual(page.items[1].kind, "Node")
        XCTAssertEqual(page.items[1].name, "né")
        XCTAssertEqual(page.items[1].namespace, "")
        XCTAssertEqual(String(decoding: page.items[1].json, as: UTF8.self), item)
        let last = try JSONEnvelope.listPage(Array(#"{"kind":"ServiceList","metadata":{"resourceVersion":"3","continue":""},"items":null}"#.utf8))
        XCTAssertNil(last.continueToken)
        XCTAssertEqual(last.items, [])
    }

    func testMalformedInputIsAnErrorNotACrash() {
        let inputs = [#"{"kind":"ServiceList","items":[]}"#, #"{"kind":"ServiceList","metadata":{"resourceVersion":"1"},"items":[{"metadata":}]}"#,
                      "[1,2]", #"{"kind":"ServiceList","metadata":{"resourceVersion":"1"},"items":[]} x"#, #"{"kind":"#, ""]
        for input in inputs {
            XCTAssertThrowsError(try JSONEnvelope.listPage(Array(input.utf8)), input)
        }
        XCTAssertThrowsError(try JSONEnvelope.watchEvent(Array(#"{"type":"SOMETHING","object":{}}"#.utf8)))
        XCTAssertThrowsError(try JSONEnvelope.watchEvent(Array(#"{"object":{}}"#.utf8)))
        var splitter = WatchEventSplitter()
        XCTAssertThrowsError(try splitter.append(Array("hello".utf8)))
        var small = WatchEventSplitter(maximumEventSize: 10)
        XCTAssertThrowsError(try small.append(Array(#"{"type":"ADDED","object":{"#.utf8)))
    }

    func testStatusBody() throws {
        let text = #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"services is forbidden: User \"x\" cannot list resource \"services\"","reason":"Forbidden","details":{"kind":"services"},"code":403}"#
        let status = try JSONEnvelope.status(Array(text.utf8))
        XCTAssertEqual(status.code, 403)
        XCTAssertEqual(status.reason, "Forbidden")
        XCTAssertEqual(status.message, #"services is forbidden: User "x" cannot list resource "services""#)
    }

    func testQueryEncoding() {
        XCTAssertEqual(encodeQuery([("labelSelector", "!service.kubernetes.io/headless,a=b")]),
                       "labelSelector=%21service.kubernetes.io%2Fheadless%2Ca%3Db")
    }
}

final class BackoffTests: XCTestCase {
    /// A fixed sequence of random numbers, so the jitter is known.
    private struct Sequence: RandomNumberGenerator {
        var values: [UInt64]
        var index = 0
        mutating func next() -> UInt64 {
            defer { index += 1 }
            return values[index % values.count]
        }
    }

    func testDelaysGrowWithinJitterAndStayUnderTheCap() {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2), factor: 2, jitter: 1)
        var generator = SystemRandomNumberGenerator()
        var base = Duration.milliseconds(100)
        for _ in 0..<12 {
            let delay = backoff.next(using: &generator)
            XCTAssertGreaterThanOrEqual(delay, min(base, .seconds(2)))
            XCTAssertLessThanOrEqual(delay, min(base * 2, .seconds(2)))
            base = min(base * 2, .seconds(2))
        }
        backoff.reset()
        let afterReset = backoff.next(using: &generator)
        XCTAssertLessThanOrEqual(afterReset, .milliseconds(200))
    }

    func testJitterSpreadsDelays() {
        var low = Sequence(values: [0])
        var high = Sequence(values: [UInt64.max])
        var first = Backoff(initial: .seconds(1), maximum: .seconds(60), jitter: 0.5)
        var second = first
        XCTAssertEqual(first.next(using: &low), .seconds(1))
        let jittered = second.next(using: &high)
        XCTAssertGreaterThan(jittered, .milliseconds(1400))
        XCTAssertLessThanOrEqual(jittered, .milliseconds(1500))
    }
}
