import XCTest
@testable import ServiceModel

final class IPAddressTests: XCTestCase {
    func testParsesAndPrintsIPv4() {
        XCTAssertEqual(IPAddress("198.18.0.10")?.bytes, [198, 18, 0, 10])
        XCTAssertEqual(IPAddress("198.18.0.10")?.description, "198.18.0.10")
        for octet in 0...255 {
            let bytes: [UInt8] = [UInt8(octet), UInt8(255 - octet), UInt8(octet / 3), UInt8(octet % 10)]
            XCTAssertEqual(IPAddress(bytes: bytes)?.description, bytes.map { String($0) }.joined(separator: "."))
        }
        for bad in ["198.18.0", "198.18.0.256", "198.018.0.1", "a.b.c.d", "", "1.2.3.4.5", "1..2.3"] {
            XCTAssertNil(IPAddress(bad), bad)
        }
    }

    func testParsesAndPrintsIPv6() {
        XCTAssertEqual(IPAddress("2001:db8::1")?.description, "2001:db8::1")
        XCTAssertEqual(IPAddress("2001:DB8:0:0:1:0:0:1")?.description, "2001:db8::1:0:0:1")
        XCTAssertEqual(IPAddress("::")?.description, "::")
        XCTAssertEqual(IPAddress("::ffff:192.0.2.1")?.bytes.suffix(4), [192, 0, 2, 1])
        XCTAssertEqual(IPAddress("2001:db8:0:1:1:1:1:1")?.description, "2001:db8:0:1:1:1:1:1")
        for bad in ["2001:db8:::1", "2001:db8::1::2", "12345::", "1:2:3:4:5:6:7:8:9", "2001:db8::g"] {
            XCTAssertNil(IPAddress(bad), bad)
        }
        XCTAssertTrue(IPAddress("::1")!.isLoopback)
        XCTAssertTrue(IPAddress("127.0.0.1")!.isLoopback)
    }

    func testCIDRMasksHostBitsAndContains() {
        let cidr = CIDR("198.19.1.77/17")!
        XCTAssertEqual(cidr.description, "198.19.0.0/17")
        XCTAssertTrue(cidr.contains(IPAddress("198.19.127.1")!))
        XCTAssertFalse(cidr.contains(IPAddress("198.19.128.1")!))
        XCTAssertFalse(cidr.contains(IPAddress("2001:db8::1")!))
        XCTAssertEqual(CIDR("2001:db8:1::5/48")?.description, "2001:db8:1::/48")
        XCTAssertNil(CIDR("198.19.0.0/33"))
        XCTAssertNil(CIDR("198.19.0.0"))
        XCTAssertNil(CIDR("198.19.0.0/-1"))
    }
}
