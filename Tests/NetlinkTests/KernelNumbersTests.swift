import CNetfilter
import XCTest

import Netlink
import ServiceModel

/// The named kernel numbers are the headers' numbers, and the ones other modules define
/// on their own (IANA protocol numbers in ServiceModel) agree with the headers.
final class KernelNumbersTests: XCTestCase {
    func testConntrackStateBitsFollowTheKernelsRule() {
        // NF_CT_STATE_BIT(ctinfo) is 1 << (ctinfo % IP_CT_IS_REPLY + 1); invalid is bit 0.
        XCTAssertEqual(ConntrackStateBit.established, 1 << (UInt32(IP_CT_ESTABLISHED.rawValue) % UInt32(IP_CT_IS_REPLY.rawValue) + 1))
        XCTAssertEqual(ConntrackStateBit.new, 0x08)
        XCTAssertEqual(ConntrackStateBit.invalid, 0x01)
        XCTAssertEqual(ConntrackStateBit.untracked, 0x40)
    }

    func testTransportProtocolNumbersAreIPPROTO() {
        XCTAssertEqual(TransportProtocol.tcp.number, UInt8(IPPROTO_TCP))
        XCTAssertEqual(TransportProtocol.udp.number, UInt8(IPPROTO_UDP))
        XCTAssertEqual(TransportProtocol.sctp.number, UInt8(IPPROTO_SCTP))
    }

    func testVerdictCodes() {
        XCTAssertEqual(VerdictCode.accept, 1)
        XCTAssertEqual(VerdictCode.drop, 0)
        XCTAssertEqual([VerdictCode.continue, VerdictCode.break, VerdictCode.jump, VerdictCode.goto, VerdictCode.return],
                       [-1, -2, -3, -4, -5])
    }

    func testRegistersFollowNftsSlotNaming() {
        XCTAssertEqual(NftRegister.slot(0).rawValue, UInt32(NFT_REG_1.rawValue))
        XCTAssertEqual(NftRegister.slot(4).rawValue, UInt32(NFT_REG_2.rawValue))
        XCTAssertEqual(NftRegister.slot(1).rawValue, UInt32(NFT_REG32_01.rawValue))
        XCTAssertEqual(NftRegister.slots(forBytes: 16), 4)
        XCTAssertEqual(NftRegister.slots(forBytes: 1), 1)
    }
}
