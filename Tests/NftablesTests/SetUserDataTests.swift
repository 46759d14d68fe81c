import XCTest
import ServiceModel
@testable import Nftables

/// Pins set userdata to the bytes nft 1.0.6 wrote for the same declarations (`nft --debug=mnl -f`).
final class SetUserDataTests: XCTestCase {
    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    func testTypedMapWithVerdicts() {
        let set = NamedSet(name: "service-ips", key: .types([.ipv4Address, .inetProto, .inetService]), data: .verdict)
        XCTAssertEqual(hex(SetUserData.encode(set)), "000400000000010400000000030800040d0000000100060400000000")
    }

    func testPlainAddressSet() {
        let set = NamedSet(name: "cluster-ips", key: .types([.ipv6Address]))
        XCTAssertEqual(hex(SetUserData.encode(set)), "000402000000")
    }

    func testConcatenatedSetWithoutData() {
        let set = NamedSet(name: "hairpin-endpoints", key: .types([.ipv6Address, .ipv6Address]))
        XCTAssertEqual(hex(SetUserData.encode(set)), "000400000000030800040d0000000100")
    }

    func testTypeofBackendsMap() {
        let key: [Selector] = [.address(.destination, .ip), .l4proto, .transportDestinationPort, .randomNumber(modulus: 3)]
        let set = NamedSet(name: "cluster-backends-3", key: .typeOf(key),
                           data: .fields(.typeOf([.address(.destination, .ip), .transportDestinationPort])))
        XCTAssertEqual(hex(SetUserData.encode(set)),
                       "000400000000010400000000"
                       + "036000040d00000001580014000407000000010c00040c00000001040c000000010e0004090000000106000410000000"
                       + "0214000407000000010c00040b000000010402000000031a0004170000000112000401000000010403000000020400000000"
                       + "043400040d000000012c0014000407000000010c00040c00000001040c0000000114000407000000010c00040b000000010402000000"
                       + "060400000000")
    }

    func testTypeofNodePortMapIPv6() {
        let key: [Selector] = [.l4proto, .transportDestinationPort, .randomNumber(modulus: 3)]
        let set = NamedSet(name: "nodeport-backends-3", key: .typeOf(key),
                           data: .fields(.typeOf([.address(.destination, .ip6), .transportDestinationPort])))
        XCTAssertEqual(hex(SetUserData.encode(set)),
                       "000400000000010400000000034a00040d0000000142000e00040900000001060004100000000114000407000000010c00040b000000010402000000021a0004170000000112000401000000010403000000020400000000043400040d000000012c0014000407000000010c00040d0000000104090000000114000407000000010c00040b000000010402000000060400000000")
    }
}
