import Nftables
import ProxyCompiler
import ProxyEngine
import ProxyEngineTesting
import ServiceModel
import ServiceTestSupport
import XCTest

/// `ServiceProxy.plan`: exactly the operations the next apply of a new process commits, and
/// the frontends those operations add, remove or re-balance.
final class PlanTests: XCTestCase {
    private let node = NodeConfig(nodeName: "node-1", nodeIPs: [IPAddress("192.0.2.10")!],
                                  clusterCIDRs: [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])

    /// 15 seeds × 12 random changes: a fresh proxy's plan lists exactly the operations a
    /// fresh proxy's apply then commits, commits nothing itself, and is empty afterwards.
    func testPlanIsWhatTheNextApplyCommits() throws {
        for seed in 1...15 {
            var random = RandomServices(seed: UInt64(seed))
            let kernel = FakeKernel()
            var map = random.map(size: 30)
            for step in 0..<12 {
                let generation = try kernel.generation()
                let plan = try ServiceProxy(node: node, kernel: kernel).plan(map)
                XCTAssertEqual(try kernel.generation(), generation, "seed \(seed) step \(step): plan committed")
                let report = try ServiceProxy(node: node, kernel: kernel).apply(map)
                XCTAssertEqual(plan.transaction, report.sync.transaction, "seed \(seed) step \(step)")
                XCTAssertTrue(try ServiceProxy(node: node, kernel: kernel).plan(map).isEmpty, "seed \(seed) step \(step)")
                map = random.mutate(map, size: 30)
            }
        }
    }

    /// One endpoint replaced: one changed frontend per family it is served in, naming the
    /// endpoint that goes and the one that comes.
    func testFrontendChangesNameTheEndpoints() throws {
        let kernel = FakeKernel()
        let ip = { (text: String) in IPAddress(text)! }
        var web = Service(name: ServiceName(namespace: "shop", name: "web"), clusterIPs: [ip("198.18.0.20")],
                          ports: [ServicePort(name: "http", transport: .tcp, port: 80, nodePort: 30080, endpoints: [
                              Endpoint(address: ip("198.19.1.11"), port: 8080), Endpoint(address: ip("198.19.1.12"), port: 8080),
                          ])])
        try ServiceProxy(node: node, kernel: kernel).apply(ServiceMap(services: [web]))
        web.ports[0].endpoints[1].address = ip("198.19.1.13")
        let gone = Service(name: ServiceName(namespace: "shop", name: "new"), clusterIPs: [ip("198.18.0.21")],
                           ports: [ServicePort(name: "", transport: .udp, port: 53)])
        let plan = try ServiceProxy(node: node, kernel: kernel).plan(ServiceMap(services: [web, gone]))
        let changes = Dictionary(uniqueKeysWithValues: plan.frontendChanges.map { ($0.key.description, $0) })
        XCTAssertEqual(Set(changes.keys), ["198.18.0.20:80/tcp", "NodePort 30080/tcp (IPv4)", "198.18.0.21:53/udp"])
        let clusterIP = try XCTUnwrap(changes["198.18.0.20:80/tcp"])
        XCTAssertEqual(clusterIP.addedTargets.map(\.description), ["198.19.1.13:8080"])
        XCTAssertEqual(clusterIP.removedTargets.map(\.description), ["198.19.1.12:8080"])
        let added = try XCTUnwrap(changes["198.18.0.21:53/udp"])
        XCTAssertNil(added.before)
        XCTAssertEqual(added.after?.targets, [])
        XCTAssertEqual(added.after?.kind, .clusterIP)
        let owners = FrontendOwners(ServiceMap(services: [web, gone]))
        XCTAssertEqual(owners[clusterIP.key]?.service, web.name)
        XCTAssertEqual(owners[clusterIP.key]?.portName, "http")
    }
}
