import Foundation
import Netlink
import Nftables
import ProxyCompiler
import ServiceModel
import XCTest

/// A batch the kernel refuses is reported with the failing operation and leaves the
/// previous ruleset exactly in place.
final class RejectedBatchTests: XCTestCase {
    private var target: TestNamespace?

    override func tearDown() { target?.remove() }

    private func ruleset(endpoints: [String]) -> Ruleset {
        let service = Service(
            name: ServiceName(namespace: "default", name: "echo-server"),
            clusterIPs: [IPAddress("198.18.0.10")!],
            ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 32000,
                                endpoints: endpoints.map { Endpoint(address: IPAddress($0)!, port: 8080) })])
        return Compiler(node: NodeConfig(clusterCIDRs: [CIDR("198.19.0.0/16")!]))
            .compile(ServiceMap(services: [service])).ruleset
    }

    func testRejectedBatchNamesTheOperationAndChangesNothing() throws {
        guard geteuid() == 0 else { throw XCTSkip("requires root: kernel tests program private network namespaces") }
        let namespace = try TestNamespace("rejected")
        target = namespace
        let client = try NftablesClient(networkNamespace: namespace.name)

        var first = Transaction()
        ruleset(endpoints: ["198.19.1.11", "198.19.1.12", "198.19.1.13"]).tables.forEach { first.replace($0) }
        try client.commit(first)
        let before = try namespace.canonicalRuleset()

        // A valid replacement with one more endpoint, followed by a rule for a chain that does not exist.
        var second = Transaction()
        ruleset(endpoints: ["198.19.1.11", "198.19.1.12", "198.19.1.13", "198.19.1.14"]).tables.forEach { second.replace($0) }
        let doomed = Operation.addRule(.ip, table: RulesetLayout.tableName, chain: "no-such-chain", Rule([.verdict(.accept)]))
        second.append(doomed)

        XCTAssertThrowsError(try client.commit(second)) { error in
            guard case NetlinkError.rejected(let operation, let errno, _) = error else {
                return XCTFail("expected a rejected batch, got \(error)")
            }
            XCTAssertEqual(operation, doomed.summary)
            XCTAssertEqual(errno, ENOENT)
            XCTAssertTrue("\(error)".contains("add rule ip nftproxy no-such-chain accept"), "\(error)")
        }
        XCTAssertEqual(try namespace.canonicalRuleset(), before, "the kernel must keep the previous ruleset")
    }
}
