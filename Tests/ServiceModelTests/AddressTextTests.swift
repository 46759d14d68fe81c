import Glibc
import XCTest
@testable import ServiceModel

/// The text forms of RFC 4291 section 2.2, and what nftproxy refuses besides.
final class AddressTextTests: XCTestCase {
    /// Accepted text and the canonical (RFC 5952) form it must print as.
    private let valid: [(String, String)] = [
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("10.0.0.1", "10.0.0.1"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
        ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
        ("2001:DB8:0:0:8:800:200C:417A", "2001:db8::8:800:200c:417a"),
        ("FF01::101", "ff01::101"),
        ("0000:0000:0000:0000:0000:0000:0000:0001", "::1"),
        ("::ffff:192.0.2.1", "::ffff:c000:201"),
        ("::13.1.68.3", "::d01:4403"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
        ("64:ff9b::198.51.100.7", "64:ff9b::c633:6407"),
        ("1::1.2.3.4", "1::102:304"),
    ]

    /// Refused text, each a different way of being wrong.
    private let invalid: [String] = [
        "", " 10.0.0.1", "10.0.0.1 ", "10.0.0", "10.0.0.1.2", "10..0.1", ".10.0.0.1", "10.0.0.1.",
        "256.0.0.1", "010.0.0.1", "10.00.0.1", "1e1.0.0.1", "+1.0.0.1", "-1.0.0.1", "0x0a.0.0.1",
        "1:1.2.3.4::1", "1.2.3.4::", "1.2.3.4::1", "+1::", "-1::", "::+1", "1::+f",
        ":", ":::", "1:", ":1", ":1::", "1::2:", "1:::2", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3", "::1.2.3.04",
        "::256.1.1.1", "::1.2.3.4:5", "fe80::1%eth0", "fe80::1%1", "[::1]", "::g", "0x1::",
        "1:2:3:4:5:6:7", "::ffff:1.2.3.4.5", "1.2.3.4:80",
    ]

    func testValidForms() {
        for (text, canonical) in valid {
            XCTAssertEqual(IPAddress(text)?.description, canonical, text)
        }
    }

    func testInvalidForms() {
        for text in invalid {
            XCTAssertNil(IPAddress(text), text)
        }
    }

    func testEmbeddedIPv4LandsInTheLast32Bits() {
        XCTAssertEqual(IPAddress("::ffff:192.0.2.1")?.bytes, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1])
    }

    func testCIDRForms() {
        XCTAssertEqual(CIDR("10.0.0.0/8")?.description, "10.0.0.0/8")
        XCTAssertEqual(CIDR("::/0")?.description, "::/0")
        XCTAssertEqual(CIDR("2001:db8::/128")?.description, "2001:db8::/128")
        for text in ["10.0.0.0/08", "10.0.0.0/+8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/8/8",
                     "10.0.0.0 /8", "1:1.2.3.4::1/64", "10.0.0.0/0008", "/8"] {
            XCTAssertNil(CIDR(text), text)
        }
    }

    /// Random strings of address-like tokens, compared with glibc's `inet_pton`: both must
    /// accept the same strings (leading-zero octets aside, which glibc also refuses) and
    /// yield the same bytes.
    func testAgreesWithInetPton() {
        var generator = SeededGenerator(seed: 0x6e66_7470_726f_7879)
        let tokens = ["0", "1", "00", "01", "ff", "FFFF", "12345", "abcd", "g", ":", "::", ":::", ".", "1.2.3.4",
                      "255", "256", "10", "0.0", "+", "-", "+1", " ", "%", "%eth0", "7", "ffff", "0:0", "1:2:3:4"]
        var accepted = 0
        let rounds = 200_000
        for _ in 0..<rounds {
            var text = ""
            for _ in 0..<Int.random(in: 1...9, using: &generator) {
                text += tokens.randomElement(using: &generator) ?? ""
            }
            let ours = IPAddress(text)
            let theirs = inetPton(text)
            XCTAssertEqual(ours?.bytes, theirs, "\(text)")
            if ours != nil { accepted += 1 }
        }
        // The token mix must exercise both outcomes, or the comparison proves little.
        XCTAssertGreaterThan(accepted, rounds / 100)
        XCTAssertLessThan(accepted, rounds / 2)
    }

    private func inetPton(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}

/// SplitMix64: a small seeded generator, so that a failure can be reproduced.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
