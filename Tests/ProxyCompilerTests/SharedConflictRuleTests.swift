import KubeObjects
import Nftables
@testable import ProxyCompiler
import ServiceModel
import ServiceTestSupport
import XCTest

/// The input decoder and the compiler decide frontend conflicts by one rule
/// (ServiceModel.FrontendClaims): same conflicts, same words, same winner.
final class SharedConflictRuleTests: XCTestCase {
    private let yaml = """
        apiVersion: v1
        kind: Service
        metadata: {name: b, namespace: default}
        spec:
          type: NodePort
          clusterIPs: [198.18.0.2, "2001:db8:18::2"]
          externalIPs: [192.0.2.1]
          ports: [{name: web, port: 80, nodePort: 30080}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: a, namespace: zzz}
        spec:
          type: NodePort
          clusterIP: 198.18.0.1
          externalIPs: [192.0.2.1]
          ports: [{name: http, port: 80, nodePort: 30080}, {name: alt, port: 8080}]
        """

    func testDecoderAndCompilerReportTheSameConflicts() throws {
        var decoder = KubeObjectDecoder()
        try decoder.add(contents: yaml, source: "conflicts.yaml")
        let (map, warnings) = try decoder.serviceMap()
        let (a, b) = (ServiceName(namespace: "zzz", name: "a"), ServiceName(namespace: "default", name: "b"))
        XCTAssertEqual(warnings.findings, [
            .conflict(FrontendKey(address: IPAddress("192.0.2.1"), transport: .tcp, port: 80), loser: a, owner: b,
                      field: "spec.ports[0].port"),
            .conflict(FrontendKey(address: nil, transport: .tcp, port: 30080), loser: a, owner: b, field: "spec.ports[0].nodePort"),
        ])
        let compilation = Compiler(node: Fixtures.node).compile(map)
        XCTAssertEqual(compilation.warnings, warnings)
    }

    func testTheWinnerIsServedAndTheLoserKeepsItsOtherFrontends() throws {
        var decoder = KubeObjectDecoder()
        try decoder.add(contents: yaml, source: "conflicts.yaml")
        let (map, _) = try decoder.serviceMap()
        let (served, _) = frontends(of: map, family: .v4)
        let owners = Dictionary(served.map { ($0.key, $0.service.description) }, uniquingKeysWith: { first, _ in first })
        XCTAssertEqual(owners[FrontendKey(address: IPAddress("192.0.2.1"), transport: .tcp, port: 80)], "default/b")
        XCTAssertEqual(owners[FrontendKey(address: nil, transport: .tcp, port: 30080)], "default/b")
        XCTAssertEqual(owners[FrontendKey(address: IPAddress("192.0.2.1"), transport: .tcp, port: 8080)], "zzz/a")
        XCTAssertEqual(owners[FrontendKey(address: IPAddress("198.18.0.1"), transport: .tcp, port: 80)], "zzz/a")
    }
}
