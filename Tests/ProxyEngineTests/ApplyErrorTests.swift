import Conntrack
import Netlink
import Nftables
import ProxyEngine
import ProxyEngineTesting
import ServiceModel
import XCTest

/// A refused commit names the Services whose elements the refused operation carried.
final class ApplyErrorTests: XCTestCase {
    /// Refuses the first operation of a commit that adds elements to a set whose name starts
    /// with `prefix`, as the kernel refuses one operation of a batch (and applies none of it).
    final class RefusingKernel: ProxyKernel {
        let inner = FakeKernel()
        let prefix: String
        init(refusingElementsOf prefix: String) { self.prefix = prefix }

        func generation() throws(NetlinkError) -> UInt32 { try inner.generation() }
        func commit(_ transaction: Transaction, expectedGeneration: UInt32?) throws(NetlinkError) {
            for operation in transaction.operations {
                if case .addElements(_, _, let set, _) = operation, set.name.hasPrefix(prefix) {
                    throw .rejected(operation: operation.summary, errno: ENOMEM, kernelMessage: nil)
                }
            }
            try inner.commit(transaction, expectedGeneration: expectedGeneration)
        }
        func readTable(_ family: TableFamily, _ name: String) throws(NetlinkError) -> TableReadBack? {
            try inner.readTable(family, name)
        }
        func conntrackFlows(family: IPFamily) throws(NetlinkError) -> [ConntrackFlow] { [] }
        func deleteConntrackFlows(matching filters: [ConntrackFilter]) throws(NetlinkError) -> Int { 0 }
    }

    private let node = NodeConfig(nodeName: "node-1", clusterCIDRs: [CIDR("198.19.0.0/16")!])

    private func service(_ name: String, _ last: Int, endpoints: Int) -> Service {
        Service(name: ServiceName(namespace: "shop", name: name), clusterIPs: [IPAddress("198.18.0.\(last)")!],
                ports: [ServicePort(name: "http", transport: .tcp, port: 80, endpoints: (0..<endpoints).map {
                    Endpoint(address: IPAddress("198.19.\(last).\($0 + 1)")!, port: 8080)
                })])
    }

    func testARefusedElementOperationNamesItsService() {
        let proxy = ServiceProxy(node: node, kernel: RefusingKernel(refusingElementsOf: "service-backends-3"))
        let map = ServiceMap(services: [service("web", 1, endpoints: 3), service("api", 2, endpoints: 2)])
        XCTAssertThrowsError(try proxy.apply(map)) { error in
            guard let error = error as? ApplyError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.services, [ServiceName(namespace: "shop", name: "web")])
            XCTAssertTrue(error.description.hasSuffix("(Service shop/web)"), error.description)
            XCTAssertTrue(error.description.contains("service-backends-3"), error.description)
        }
    }

    func testARefusalOfASharedPartNamesNoService() {
        let proxy = ServiceProxy(node: node, kernel: RefusingKernel(refusingElementsOf: "cluster-ips"))
        XCTAssertThrowsError(try proxy.apply(ServiceMap(services: [service("web", 1, endpoints: 3)]))) { error in
            guard let error = error as? ApplyError else { return XCTFail("\(error)") }
            // cluster-ips holds bare addresses: no frontend key, so no Service is named.
            XCTAssertEqual(error.services, [])
        }
    }
}
