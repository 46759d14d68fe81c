import Nftables
import ServiceModel

/// Tables for tests of the encoder, the decoder and the kernel's agreement with nft.
public enum SampleTables {
    /// An ip table "nftproxy" using every statement, selector kind and set option the IR has.
    public static var everyStatementAndSetOption: Table {
        let a = { (text: String) in Value.address(IPAddress(text)!) }
        let daddr = Selector.address(.destination, .ip), saddr = Selector.address(.source, .ip)
        let sets = [
            NamedSet(name: "cluster-ips", key: .types([.ipv4Address]), size: 16, elements: [SetElement(key: [a("198.18.0.1")])]),
            NamedSet(name: "service-ips", key: .types([.ipv4Address, .inetProto, .inetService]), data: .verdict,
                     elements: [SetElement(key: [a("198.18.0.1"), .proto(6), .port(80)], data: .verdict(.goto("svc-1")))]),
            NamedSet(name: "backends-2", key: .typeOf([daddr, .l4proto, .transportDestinationPort, .randomNumber(modulus: 2)]),
                     data: .fields(.typeOf([daddr, .transportDestinationPort])),
                     elements: [SetElement(key: [a("198.18.0.1"), .proto(6), .port(80), .integer(1)],
                                           data: .values([a("198.19.1.11"), .port(8080)]))]),
            NamedSet(name: "affinity", key: .types([.ipv4Address, .inetService]), size: 1024, flags: [.dynamic],
                     timeout: 10_800_000),
            NamedSet(name: "counted", key: .types([.ipv4Address]), flags: [.timeout], counter: true,
                     elements: [SetElement(key: [a("198.19.1.11")], timeout: 30_000)]),
        ]
        let chains = [
            Chain(name: "prerouting", base: BaseChain(type: .nat, hook: .prerouting, priority: -100), rules: [
                Rule([.bitTest(.ctState, mask: CtStateFlag.new, isSet: true), .verdict(.jump("svc"))]),
                Rule([.compare(.fibDestinationType, negated: false, .integer(FibAddressType.local)),
                      .prefix(daddr, network: IPAddress("127.0.0.0")!, length: 8, negated: true), .verdict(.return)]),
            ]),
            Chain(name: "svc", rules: [
                Rule([.prefix(saddr, network: IPAddress("10.96.0.0")!, length: 12, negated: false), .setMarkBits(0x4000)]),
                Rule([.verdictMap([daddr, .l4proto, .transportDestinationPort], map: "service-ips")]),
                Rule([.lookup([daddr], set: "cluster-ips"), .counter, .reject(.portUnreachable)]),
                Rule([.compare(.l4proto, negated: false, .proto(6)), .reject(.tcpReset)]),
            ]),
            Chain(name: "svc-1", rules: [
                Rule([.updateSet([saddr, .transportDestinationPort], set: "affinity", timeout: 600_000)]),
                Rule([.dnatMap([daddr, .l4proto, .transportDestinationPort, .randomNumber(modulus: 2)], map: "backends-2",
                               family: .ip)]),
            ]),
            Chain(name: "postrouting", base: BaseChain(type: .nat, hook: .postrouting, priority: 100), rules: [
                Rule([.bitTest(.mark, mask: 0x4000, isSet: false), .verdict(.return)]),
                Rule([.toggleMarkBits(0x4000), .masquerade(fullyRandom: true)]),
                Rule([.bitTest(.ctStatus, mask: CtStatusFlag.destinationNAT, isSet: true), .verdict(.accept)]),
            ]),
        ]
        return Table(family: .ip, name: "nftproxy", sets: sets, chains: chains)
    }
}
