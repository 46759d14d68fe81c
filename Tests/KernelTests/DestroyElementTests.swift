import Foundation
@testable import Netlink
@testable import Nftables
import ServiceModel
import ServiceTestSupport
import XCTest

/// What the endpoint counters' retirement relies on (docs/kernel.md, "Counting in the
/// packet path"): `NFT_MSG_DESTROYSETELEM` deletes an element of a dynamic set that is
/// there, and takes one that is not as done, in the same batch as other operations.
final class DestroyElementTests: XCTestCase {
    private var target: TestNamespace?

    override func setUpWithError() throws {
        guard geteuid() == 0 else { throw XCTSkip("requires root: kernel tests program private network namespaces") }
        target = try TestNamespace("destroy")
    }

    override func tearDown() {
        target?.remove()
        target = nil
    }

    func testDestroyDeletesWhatIsThereAndPassesOverWhatIsNot() throws {
        let target = try XCTUnwrap(target)
        let set = NamedSet(name: "counted", key: .types([.ipv4Address, .inetService]), size: 1024, flags: [.dynamic],
                           counter: true)
        let present = SetElement(key: [.address(IPAddress("198.19.1.11")!), .port(8080)])
        let absent = SetElement(key: [.address(IPAddress("198.19.1.12")!), .port(8080)])
        let client = try NftablesClient(networkNamespace: target.name)
        var create = Transaction()
        create.create(Table(family: .ip, name: "t", sets: [set], chains: []))
        create.addElements([present], to: set, family: .ip, table: "t")
        try client.commit(create)

        // A delete of the absent element refuses the whole batch; a destroy does not.
        var delete = Transaction()
        delete.deleteElements([absent], from: set, family: .ip, table: "t")
        XCTAssertThrowsError(try client.commit(delete))
        var destroy = Transaction()
        destroy.destroyElements([present, absent], from: set, family: .ip, table: "t")
        XCTAssertNoThrow(try client.commit(destroy))

        let listed = try target.run(["nft", "list", "set", "ip", "t", "counted"]).check().stdout
        XCTAssertFalse(listed.contains("198.19.1.11"), listed)
        XCTAssertTrue(listed.contains("flags dynamic"), listed)
    }
}
