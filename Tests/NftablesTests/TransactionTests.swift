import XCTest
import Netlink
import ServiceModel
@testable import Nftables

final class TransactionTests: XCTestCase {
    /// Encodes each operation as the commit would and checks the real message size: the
    /// element list is one attribute nest, whose 16-bit length caps it at 64 KiB.
    func testLargeElementListsAreSplitIntoMessagesThatFitANetlinkNest() throws {
        let address = { (index: Int) in IPAddress(bytes: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 10)
                                                   + [UInt8(index >> 8), UInt8(index & 0xff)])! }
        let backends = NamedSet(
            name: "service-backends-10",
            key: .typeOf([.address(.destination, .ip6), .l4proto, .transportDestinationPort, .randomNumber(modulus: 10)]),
            data: .fields(.typeOf([.address(.destination, .ip6), .transportDestinationPort])))
        let backendElements = (0..<20_000).map { index in
            SetElement(key: [.address(address(index)), .proto(6), .port(80), .integer(UInt32(index % 10))],
                       data: .values([.address(address(index)), .port(8080)]))
        }
        let dispatch = NamedSet(name: "service-ips", key: .types([.ipv6Address, .inetProto, .inetService]), data: .verdict)
        let longChain = "external-lb-" + String(repeating: "9", count: 18)
        let dispatchElements = (0..<20_000).map { index in
            SetElement(key: [.address(address(index)), .proto(17), .port(53)], data: .verdict(.goto(longChain)))
        }

        // Elements with comments of the longest kind nft writes, and with short ones.
        let traffic = NamedSet(name: "endpoint-traffic",
                               key: .types([.ipv6Address, .inetProto, .inetService, .ipv6Address, .inetService]), counter: true)
        let trafficElements = (0..<20_000).map { index in
            SetElement(key: [.address(address(index)), .proto(6), .port(80), .address(address(index)), .port(8080)])
                .commented(index % 2 == 0 ? String(repeating: "c", count: SetElement.maximumCommentBytes) : "ns/svc-\(index) http - remote")
        }

        for (set, elements) in [(backends, backendElements), (dispatch, dispatchElements), (traffic, trafficElements)] {
            var transaction = Transaction()
            transaction.addElements(elements, to: set, family: .ip6, table: "nftproxy")
            XCTAssertGreaterThan(transaction.operations.count, 1, set.name)
            let encoder = MessageEncoder(transaction: transaction)
            var total = 0
            for operation in transaction.operations {
                guard case .addElements(_, _, _, let chunk) = operation else { return XCTFail("\(operation.summary)") }
                total += chunk.count
                var batch = NetlinkBatch()
                let empty = batch.byteCount
                let header = encoder.header(for: operation)
                try batch.append(operation.summary, type: header.type, family: header.family, flags: header.flags) {
                    (message) throws(NetlinkError) in try encoder.encode(operation, into: message)
                }
                XCTAssertLessThan(batch.byteCount - empty, 64 * 1024, "\(set.name): \(chunk.count) elements in one message")
            }
            XCTAssertEqual(total, elements.count, set.name)
        }
    }
}
