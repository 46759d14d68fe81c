import Foundation
import XCTest

@testable import Netlink

/// Kernel tests of the Netlink module: each test programs only private network
/// namespaces it creates (and deletes again, even on failure).
final class NetlinkTests: XCTestCase {
    private var namespaces: [NetlinkTestNamespace] = []

    override func setUpWithError() throws {
        try netlinkRequireRoot()
    }

    override func tearDown() {
        for namespace in namespaces { namespace.remove() }
        namespaces = []
        super.tearDown()
    }

    /// A fresh namespace, removed in tearDown.
    private func makeNamespace() throws -> NetlinkTestNamespace {
        let namespace = try NetlinkTestNamespace()
        namespaces.append(namespace)
        return namespace
    }

    // MARK: Namespaces

    func testRunSwitchesOnlyForTheClosureAndRestores() throws {
        let sandbox = try makeNamespace()
        let before = namespaceInode(NetworkNamespace.currentThreadPath)
        let target = namespaceInode(sandbox.namespace.path)
        XCTAssertNotEqual(before, target)

        let inside = try sandbox.namespace.run { namespaceInode(NetworkNamespace.currentThreadPath) }
        XCTAssertEqual(inside, target)
        XCTAssertEqual(namespaceInode(NetworkNamespace.currentThreadPath), before)

        // A throwing body still restores the namespace.
        XCTAssertThrowsError(try sandbox.namespace.run { () throws(NetlinkError) in throw .malformed("test") })
        XCTAssertEqual(namespaceInode(NetworkNamespace.currentThreadPath), before)
    }

    func testMissingAndInvalidNamespacesAreReported() throws {
        let missing = try NetworkNamespace(named: "nftproxy-test-\(getpid())-missing")
        XCTAssertThrowsError(try NetlinkSocket(namespace: missing)) { error in
            guard case let .namespace(name, errno)? = error as? NetlinkError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(name, "nftproxy-test-\(getpid())-missing")
            XCTAssertEqual(errno, ENOENT)
            XCTAssertTrue("\(error)".contains("No such file or directory"), "\(error)")
        }
        XCTAssertThrowsError(try NetworkNamespace(named: "../etc")) { error in
            guard case .namespace(_, EINVAL)? = error as? NetlinkError else { return XCTFail("unexpected \(error)") }
        }
    }

    // MARK: Commit

    func testCommitProgramsOnlyTheTargetNamespace() throws {
        let target = try makeNamespace()
        let bystander = try makeNamespace()
        let socket = try target.socket()

        var batch = NetlinkBatch()
        try TestMessages.addTable(&batch, "nftproxy")
        try TestMessages.addChain(&batch, table: "nftproxy", "services")
        XCTAssertEqual(batch.operationCount, 2)
        XCTAssertEqual(batch.operations, ["add table ip nftproxy", "add chain ip nftproxy services"])
        try socket.commit(batch)

        let ruleset = try target.nft("list", "ruleset")
        XCTAssertTrue(ruleset.contains("table ip nftproxy {"), ruleset)
        XCTAssertTrue(ruleset.contains("chain services {"), ruleset)
        XCTAssertEqual(try bystander.nft("list", "ruleset"), "")
        XCTAssertFalse(try socket.waitForData(milliseconds: 0), "replies left on the socket")
    }

    func testRefusedOperationIsNamedAndNothingIsApplied() throws {
        let sandbox = try makeNamespace()
        let socket = try sandbox.socket()
        var existing = NetlinkBatch()
        try TestMessages.addTable(&existing, "keep")
        try socket.commit(existing)
        let before = try sandbox.nft("list", "ruleset")

        var batch = NetlinkBatch()
        try TestMessages.addTable(&batch, "fresh")
        try TestMessages.addChain(&batch, table: "fresh", "services")
        try TestMessages.addChain(&batch, table: "missing", "orphan")
        try TestMessages.addChain(&batch, table: "fresh", "later")
        XCTAssertThrowsError(try socket.commit(batch)) { error in
            guard case let .rejected(operation, errno, _)? = error as? NetlinkError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(operation, "add chain ip missing orphan")
            XCTAssertEqual(errno, ENOENT)
            XCTAssertTrue(
                "\(error)".hasPrefix("kernel refused \"add chain ip missing orphan\": No such file or directory"),
                "\(error)")
        }
        XCTAssertEqual(try sandbox.nft("list", "ruleset"), before)
        XCTAssertFalse(try socket.waitForData(milliseconds: 0), "replies left on the socket")

        // Deleting a table that does not exist, after one that does: neither happens.
        var deletes = NetlinkBatch()
        try TestMessages.deleteTable(&deletes, "keep")
        try TestMessages.deleteTable(&deletes, "never-created")
        XCTAssertThrowsError(try socket.commit(deletes)) { error in
            guard case let .rejected(operation, errno, _)? = error as? NetlinkError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(operation, "delete table ip never-created")
            XCTAssertEqual(errno, ENOENT)
        }
        XCTAssertEqual(try sandbox.nft("list", "ruleset"), before)

        // The socket is still usable afterwards.
        var next = NetlinkBatch()
        try TestMessages.addTable(&next, "after")
        try socket.commit(next)
        XCTAssertTrue(try sandbox.nft("list", "tables").contains("table ip after"))
    }

    func testTwentyThousandMessagesCommitAndEveryAckIsRead() throws {
        let sandbox = try makeNamespace()
        let socket = try sandbox.socket()
        let chains = 20_000
        var batch = NetlinkBatch()
        try TestMessages.addTable(&batch, "big")
        for index in 0..<chains {
            try TestMessages.addChain(&batch, table: "big", "chain-\(index)")
        }
        XCTAssertEqual(batch.operationCount, chains + 1)
        try socket.commit(batch)
        XCTAssertFalse(try socket.waitForData(milliseconds: 0), "replies left on the socket")

        var dumped = 0
        try socket.dump(type: NftMessage.getChain, family: TestMessages.ip) { _ in dumped += 1 }
        XCTAssertEqual(dumped, chains)
    }

    func testHundredThousandSetElementsCommit() throws {
        let sandbox = try makeNamespace()
        let socket = try sandbox.socket()
        let total = 100_000
        let chunk = 1_000
        var batch = NetlinkBatch()
        try TestMessages.addTable(&batch, "elements")
        try TestMessages.addAddressSet(&batch, table: "elements", "addresses", id: 1)
        // 198.18.0.0/15, the benchmark range: 131,072 addresses.
        let base: UInt32 = 198 << 24 | 18 << 16
        for start in stride(from: 0, to: total, by: chunk) {
            let addresses = (start..<min(start + chunk, total)).map { base + UInt32($0) }
            try TestMessages.addAddresses(&batch, table: "elements", set: "addresses", addresses)
        }
        XCTAssertEqual(batch.operationCount, 2 + total / chunk)
        try socket.commit(batch)
        XCTAssertFalse(try socket.waitForData(milliseconds: 0), "replies left on the socket")

        var counted = 0
        try socket.dump(type: NftMessage.getElements, family: TestMessages.ip) { message in
            message.put(NftAttribute.elementListTable, string: "elements")
            message.put(NftAttribute.elementListSet, string: "addresses")
        } each: { message in
            counted += try elementCount(message)
        }
        XCTAssertEqual(counted, total)
    }

    func testStaleGenerationIsRefused() throws {
        let sandbox = try makeNamespace()
        let socket = try sandbox.socket()
        let generation = try socket.generationID()

        // Another socket changes the ruleset.
        let other = try sandbox.socket()
        var change = NetlinkBatch()
        try TestMessages.addTable(&change, "concurrent")
        try other.commit(change)
        XCTAssertNotEqual(try socket.generationID(), generation)

        var stale = NetlinkBatch(generationID: generation)
        try TestMessages.addTable(&stale, "stale")
        XCTAssertThrowsError(try socket.commit(stale)) { error in
            guard case .generationChanged? = error as? NetlinkError else { return XCTFail("unexpected \(error)") }
        }
        XCTAssertFalse(try sandbox.nft("list", "tables").contains("stale"))
        XCTAssertFalse(try socket.waitForData(milliseconds: 0), "replies left on the socket")

        // The same batch against the current generation goes through.
        var current = NetlinkBatch(generationID: try socket.generationID())
        try TestMessages.addTable(&current, "current")
        try socket.commit(current)
        XCTAssertTrue(try sandbox.nft("list", "tables").contains("table ip current"))
    }

    // MARK: Dumps and requests

    func testDumpListsCreatedTables() throws {
        let sandbox = try makeNamespace()
        let socket = try sandbox.socket()
        var batch = NetlinkBatch()
        try TestMessages.addTable(&batch, "alpha")
        try TestMessages.addTable(&batch, "beta", family: TestMessages.ip6)
        try socket.commit(batch)

        var all: [String] = []
        try socket.dump(type: NftMessage.getTable, family: NetfilterFamily.unspecified) { message in
            all.append(try tableDescription(message))
        }
        XCTAssertEqual(all.sorted(), ["ip alpha", "ip6 beta"])

        var ipOnly: [String] = []
        try socket.dump(type: NftMessage.getTable, family: TestMessages.ip) { message in
            ipOnly.append(try tableDescription(message))
        }
        XCTAssertEqual(ipOnly, ["ip alpha"])

        // A single GET of one table, and of one that does not exist.
        var single: [String] = []
        try socket.request(type: NftMessage.getTable, family: TestMessages.ip) { message in
            message.put(NftAttribute.tableName, string: "alpha")
        } each: { message in
            single.append(try tableDescription(message))
        }
        XCTAssertEqual(single, ["ip alpha"])
        XCTAssertThrowsError(
            try socket.request(type: NftMessage.getTable, family: TestMessages.ip) { message in
                message.put(NftAttribute.tableName, string: "absent")
            } each: { _ in
                XCTFail("a refused request delivers no replies")
            }
        ) { error in
            guard case let .rejected(operation, errno, _)? = error as? NetlinkError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(operation, "get tables ip")
            XCTAssertEqual(errno, ENOENT)
        }
    }

    func testDumpOfMissingSetIsRefusedAndHandlerErrorsPropagate() throws {
        let sandbox = try makeNamespace()
        let socket = try sandbox.socket()
        XCTAssertThrowsError(
            try socket.dump(type: NftMessage.getElements, family: TestMessages.ip) { message in
                message.put(NftAttribute.elementListTable, string: "nothing")
                message.put(NftAttribute.elementListSet, string: "nowhere")
            } each: { _ in }
        ) { error in
            guard case let .rejected(operation, errno, _)? = error as? NetlinkError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(operation, "list set elements ip")
            XCTAssertEqual(errno, ENOENT)
        }

        var batch = NetlinkBatch()
        try TestMessages.addTable(&batch, "one")
        try socket.commit(batch)
        struct Stop: Error {}
        XCTAssertThrowsError(
            try socket.dump(type: NftMessage.getTable, family: NetfilterFamily.unspecified) { _ in throw Stop() }
        ) { error in
            guard case let .handler(inner)? = error as? NetlinkError else { return XCTFail("unexpected \(error)") }
            XCTAssertTrue(inner is Stop)
        }
        // Nothing of the abandoned dump is left to confuse the next exchange.
        XCTAssertNoThrow(try socket.generationID())
    }
}

// MARK: Degraded receive buffers

extension NetlinkTests {
    /// With a receive buffer too small for one ACK per operation, the batch goes out
    /// asking only for errors: success is silence, and refusals are still named.
    func testErrorsOnlyCommitWhenAcksDoNotFit() throws {
        let sandbox = try makeNamespace()
        let socket = try sandbox.socket()

        var batch = NetlinkBatch()
        try TestMessages.addTable(&batch, "quiet")
        for index in 0..<3_000 { try TestMessages.addChain(&batch, table: "quiet", "chain-\(index)") }
        try socket.commit(batch, acknowledgingEach: false)
        XCTAssertTrue(try sandbox.nft("list", "tables").contains("table ip quiet"))

        var failing = NetlinkBatch()
        try TestMessages.addTable(&failing, "loud")
        for index in 0..<3_000 { try TestMessages.addChain(&failing, table: "loud", "chain-\(index)") }
        try TestMessages.addChain(&failing, table: "absent", "orphan")
        XCTAssertThrowsError(try socket.commit(failing, acknowledgingEach: false)) { error in
            guard case let .rejected(operation, errno, _)? = error as? NetlinkError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(operation, "add chain ip absent orphan")
            XCTAssertEqual(errno, ENOENT)
        }
        XCTAssertFalse(try sandbox.nft("list", "tables").contains("loud"))
        XCTAssertFalse(try socket.waitForData(milliseconds: 0), "replies left on the socket")
    }

    /// ACKs lost to a full receive buffer are reported as an overrun (outcome unknown),
    /// and the socket is drained and usable afterwards.
    func testLostAcksAreReportedAsOverrun() throws {
        let sandbox = try makeNamespace()
        let socket = try sandbox.socket()
        socket.raisesBuffersForCommit = false
        try SystemCall.setSocketOption(socket.descriptor, level: SOL_SOCKET, option: SO_RCVBUFFORCE, value: 8192)
        try SystemCall.setSocketOption(socket.descriptor, level: SOL_SOCKET, option: SO_SNDBUFFORCE, value: 8 << 20)

        var batch = NetlinkBatch()
        try TestMessages.addTable(&batch, "overrun")
        for index in 0..<2_000 { try TestMessages.addChain(&batch, table: "overrun", "chain-\(index)") }
        XCTAssertThrowsError(try socket.commit(batch, acknowledgingEach: true)) { error in
            guard case .bufferOverrun? = error as? NetlinkError else { return XCTFail("unexpected \(error)") }
            XCTAssertTrue("\(error)".contains("outcome is unknown"), "\(error)")
        }
        XCTAssertFalse(try socket.waitForData(milliseconds: 0), "replies left on the socket")
        // The transaction itself was fine; reading back shows it applied.
        XCTAssertTrue(try sandbox.nft("list", "tables").contains("table ip overrun"))
        XCTAssertNoThrow(try socket.generationID())
    }
}

// MARK: Extended ACKs

extension NetlinkTests {
    /// The kernel's explanation (NLMSGERR_ATTR_MSG) reaches the error.
    func testKernelExplanationIsReported() throws {
        let sandbox = try makeNamespace()
        let socket = try sandbox.socket()
        let tooLong = String(repeating: "x", count: 300)  // NFT_NAME_MAXLEN is 256
        var batch = NetlinkBatch()
        try TestMessages.addTable(&batch, "fine")
        try TestMessages.addTable(&batch, tooLong)
        XCTAssertThrowsError(try socket.commit(batch)) { error in
            guard case let .rejected(operation, errno, kernelMessage)? = error as? NetlinkError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(operation, "add table ip \(tooLong)")
            XCTAssertEqual(errno, ERANGE)
            XCTAssertEqual(kernelMessage, "Attribute failed policy validation")
            XCTAssertTrue("\(error)".hasSuffix(": Numerical result out of range (Attribute failed policy validation)"))
        }
        XCTAssertEqual(try sandbox.nft("list", "ruleset"), "")
    }
}

// MARK: Inconsistent dumps

/// Adds and deletes one chain over and over on its own socket and thread, until stopped.
private final class ChainFlapper: @unchecked Sendable {
    // @unchecked: `socket` is used only by the flapping thread; `stopped` and `failure`
    // are guarded by `lock`.
    private let socket: NetlinkSocket
    private let table: String
    private let lock = NSLock()
    private var stopped = false
    private var failure: Error?
    private let finished = DispatchSemaphore(value: 0)

    init(socket: NetlinkSocket, table: String) {
        self.socket = socket
        self.table = table
    }

    func start() {
        Thread { [self] in
            while !lock.withLock({ stopped }) {
                do {
                    var add = NetlinkBatch()
                    try TestMessages.addChain(&add, table: table, "flap")
                    try socket.commit(add)
                    var delete = NetlinkBatch()
                    try TestMessages.deleteChain(&delete, table: table, "flap")
                    try socket.commit(delete)
                    usleep(30_000)
                } catch {
                    lock.withLock { failure = error }
                    break
                }
            }
            finished.signal()
        }.start()
    }

    /// Stops the thread and returns the error it hit, if any.
    func stop() -> Error? {
        lock.withLock { stopped = true }
        finished.wait()
        return lock.withLock { failure }
    }
}

extension NetlinkTests {
    /// Dumps taken while the ruleset keeps changing are either consistent or reported
    /// as interrupted, never a mix of two generations.
    func testDumpsDuringChangesAreConsistent() throws {
        let sandbox = try makeNamespace()
        let socket = try sandbox.socket()
        let chains = 2_000
        var batch = NetlinkBatch()
        try TestMessages.addTable(&batch, "busy")
        for index in 0..<chains { try TestMessages.addChain(&batch, table: "busy", "chain-\(index)") }
        try socket.commit(batch)

        let flapper = ChainFlapper(socket: try sandbox.socket(), table: "busy")
        flapper.start()
        var complete = 0
        var interrupted = 0
        for _ in 0..<20 {
            var names = Set<String>()
            var duplicates = 0
            do {
                try socket.dump(type: NftMessage.getChain, family: TestMessages.ip) { message in
                    let name = try NftChain(parsing: message).name
                    if !names.insert(name).inserted { duplicates += 1 }
                }
                complete += 1
                XCTAssertEqual(duplicates, 0)
                XCTAssertTrue(names.count == chains || names.count == chains + 1, "\(names.count) chains dumped")
            } catch .dumpInterrupted {
                interrupted += 1
            }
        }
        if let failure = flapper.stop() { XCTFail("flapping thread failed: \(failure)") }
        print("dumps: \(complete) complete, \(interrupted) interrupted; \(socket.discardedDumps) attempts discarded")
        XCTAssertGreaterThan(complete, 0)
    }
}
