import Foundation
import ServiceModel

/// Service maps of a given size with predictable addresses, for tests of the engine and of
/// the kernel that need many services (a fixed shape, unlike `RandomServices`).
public enum GeneratedServiceMaps {
    /// `count` services, one TCP port each, with one endpoint on another node.
    public static func manyServices(_ count: Int) -> ServiceMap {
        ServiceMap(services: (0..<count).map { index in
            Service(name: ServiceName(namespace: "ns", name: String(format: "svc-%05d", index)),
                    clusterIPs: [IPAddress("198.18.\(index / 250).\(index % 250 + 1)")!],
                    ports: [ServicePort(name: "http", transport: .tcp, port: 80,
                                        endpoints: [Endpoint(address: IPAddress("198.19.\(index / 250).\(index % 250 + 1)")!,
                                                             port: 8080, nodeName: "node-2")])])
        })
    }

    /// `count` services with three endpoints each and a NodePort; `replacing` swaps the
    /// first endpoint of one service for another address.
    public static func threeEndpointServices(_ count: Int, replacing: (service: Int, endpoint: String)? = nil) -> ServiceMap {
        var list: [Service] = []
        for index in 0..<count {
            var endpoints = (1...3).map { Endpoint(address: IPAddress("198.19.\(index / 200 + 1).\(index % 200 + 10 + $0)")!, port: 8080) }
            if let replacing, replacing.service == index {
                endpoints[0].address = IPAddress(replacing.endpoint)!
            }
            list.append(Service(name: ServiceName(namespace: "ns", name: String(format: "svc-%03d", index)),
                                clusterIPs: [IPAddress("198.18.\(index / 250).\(index % 250 + 1)")!],
                                ports: [ServicePort(name: "http", transport: .tcp, port: 80,
                                                    nodePort: UInt16(30000 + index), endpoints: endpoints)]))
        }
        return ServiceMap(services: list)
    }
}
