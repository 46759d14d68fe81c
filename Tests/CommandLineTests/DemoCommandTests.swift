import Foundation
import Sandbox
import XCTest

/// The parts of `nftproxy demo` that need no root: where its objects come from, and that the
/// product binary does not link the test sandbox (the demo itself runs in EndToEndTests).
final class DemoCommandTests: XCTestCase {
    private var nftproxy = ""

    override func setUpWithError() throws {
        nftproxy = try BuiltProducts.path(of: "nftproxy")
    }

    /// The demo reads its objects from examples/echo-server.yaml (through `nftproxy demo`, which
    /// runs nftproxy-demo), or from --objects; a missing file is an error naming the path.
    func testDemoReadsItsObjectsFromOneFile() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/echo-server.yaml")
        let printed = try CommandRunner().runChecked([nftproxy, "demo", "--print-objects"]).stdout
        XCTAssertEqual(printed, try String(contentsOf: example, encoding: .utf8))

        let other = FileManager.default.temporaryDirectory.appendingPathComponent("demo-objects-\(getpid()).yaml").path
        try "# other objects\n".write(toFile: other, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: other) }
        let given = try CommandRunner().runChecked([nftproxy, "demo", "--objects", other, "--print-objects"]).stdout
        XCTAssertEqual(given, "# other objects\n")

        let missing = try CommandRunner().run([nftproxy, "demo", "--objects", other + ".missing", "--print-objects"])
        XCTAssertEqual(missing.status, 1, "\(missing)")
        XCTAssertTrue(missing.stderr.contains("cannot read the demo's objects") && missing.stderr.contains(other + ".missing"),
                      missing.stderr)
    }

    /// The product binary does not link the test sandbox: no symbol of the Sandbox module is in it.
    func testNftproxyDoesNotLinkTheSandbox() throws {
        guard let nm = CommandRunner.resolveExecutable("nm") else { throw XCTSkip("needs nm (binutils)") }
        let symbols = try CommandRunner().runChecked([nm, nftproxy], timeout: .seconds(60)).stdout
        XCTAssertFalse(symbols.contains("7Sandbox"), "nftproxy links the Sandbox module")
        let demoSymbols = try CommandRunner().runChecked([nm, try BuiltProducts.path(of: "nftproxy-demo")], timeout: .seconds(60)).stdout
        XCTAssertTrue(demoSymbols.contains("7Sandbox"), "the check would not see the Sandbox module's symbols")
    }
}
