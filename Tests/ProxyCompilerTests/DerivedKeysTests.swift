import Nftables
import ProxyCompiler
import ServiceModel
import ServiceTestSupport
import XCTest

/// The keys `DerivedKeys` derives from a compiled table's verdict maps are exactly the keys
/// the compiler put in its backends maps (what the read-back looks up instead of dumping).
final class DerivedKeysTests: XCTestCase {
    private let node = NodeConfig(nodeName: "node-1", clusterCIDRs: [CIDR("198.19.0.0/16")!, CIDR("2001:db8:1::/48")!])

    /// The table with the elements of the maps `derived` covers removed: what the reader
    /// has in hand when it derives keys.
    private func withoutDerivedElements(_ table: Table, _ derived: DerivedKeys) -> Table {
        var copy = table
        for index in copy.sets.indices where derived.maps.contains(copy.sets[index].name) {
            copy.sets[index].elements = []
        }
        return copy
    }

    func testDerivedKeysAreTheBackendsMapsKeysOnRandomServices() {
        var random = RandomServices(seed: 7)
        var derivedMaps = Set<String>()
        for _ in 0..<40 {
            for table in Compiler(node: node).compile(random.map(size: 25)).ruleset.tables {
                let derived = DerivedKeys(table)
                let partial = withoutDerivedElements(table, derived)
                for set in table.sets {
                    let isBackends = set.name.contains("backends-")
                    XCTAssertEqual(derived.maps.contains(set.name), isBackends, "\(table.qualifiedName) \(set.name)")
                    guard isBackends else { continue }
                    derivedMaps.insert(set.name.components(separatedBy: "-backends-")[0])
                    let keys = derived.keys(of: set.name, in: partial)
                    XCTAssertEqual(keys.map(Set.init), Set(set.elements.map(\.key)), "\(table.qualifiedName) \(set.name)")
                    XCTAssertEqual(keys?.count, set.elements.count, "\(set.name): no duplicates")
                }
            }
        }
        // Every kind of backends map occurred: ClusterIP, NodePort and both Local-policy ones.
        XCTAssertEqual(derivedMaps, ["service", "nodeport", "local", "nodeport-local"])
    }

    func testAMapARuleLooksUpOtherwiseOrThatIsJumpedToIsNotDerived() {
        let key: [Selector] = [.address(.destination, .ip), .l4proto, .transportDestinationPort]
        let map = NamedSet(name: "backends-2", key: .typeOf(key + [.randomNumber(modulus: 2)]),
                           data: .fields(.typeOf([.address(.destination, .ip), .transportDestinationPort])))
        let vmap = NamedSet(name: "dispatch", key: .typeOf(key), data: .verdict, elements: [
            SetElement(key: [.address(IPAddress("198.18.0.1")!), .proto(6), .port(80)], data: .verdict(.goto("lb-2"))),
        ])
        let lb = Chain(name: "lb-2", rules: [Rule([.dnatMap(key + [.randomNumber(modulus: 2)], map: "backends-2", family: .ip)])])
        let entry = Chain(name: "entry", base: BaseChain(type: .nat, hook: .prerouting, priority: -100),
                          rules: [Rule([.verdictMap(key, map: "dispatch")])])
        let table = Table(family: .ip, name: "t", sets: [vmap, map], chains: [entry, lb])
        XCTAssertEqual(DerivedKeys(table).keys(of: "backends-2", in: table)?.count, 2)

        var jumped = table
        jumped.chains.append(Chain(name: "other", rules: [Rule([.verdict(.jump("lb-2"))])]))
        XCTAssertEqual(DerivedKeys(jumped).maps, [])

        var alsoLookedUp = table
        alsoLookedUp.chains.append(Chain(name: "other", rules: [Rule([.lookup(key + [.randomNumber(modulus: 2)], set: "backends-2")])]))
        XCTAssertEqual(DerivedKeys(alsoLookedUp).maps, [])

        var otherSelectors = table
        otherSelectors.chains.append(Chain(name: "other", rules: [
            Rule([.verdictMap([.address(.source, .ip), .l4proto, .transportDestinationPort], map: "dispatch")]),
        ]))
        XCTAssertEqual(DerivedKeys(otherSelectors).maps, ["backends-2"])
        XCTAssertNil(DerivedKeys(otherSelectors).keys(of: "backends-2", in: otherSelectors))

        var dynamic = table
        dynamic.sets[1].flags = [.dynamic]
        XCTAssertEqual(DerivedKeys(dynamic).maps, [])
    }
}
