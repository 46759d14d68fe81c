import Netlink

extension KernelReader {
    /// The sets of table `name` that `select` gives a tag, with their tags; nil when the
    /// kernel has no such table. One dump of the table's sets, none of their elements.
    public func sets<Tag>(_ family: TableFamily, _ name: String,
                          selecting select: (String) -> Tag?) throws(NetlinkError) -> [(name: String, tag: Tag)]? {
        let protocolFamily = family.protocolFamily
        guard try socket.tables(family: protocolFamily).contains(where: { $0.name == name }) else { return nil }
        return try socket.sets(family: protocolFamily, table: name).compactMap { wire in
            select(wire.name).map { (wire.name, $0) }
        }
    }

    /// Calls `body` with every element of set `set` of table `table` that carries a counter:
    /// its key as the kernel holds it (``SetElement/kernelBytes(ofKey:)``) and its packets and
    /// bytes. One dump, and nothing decoded but the counter: a scrape of 200,000 counted
    /// elements then costs what the kernel spends on the dumps.
    public func forEachCountedElement(
        _ family: TableFamily, _ table: String, set: String,
        _ body: (_ key: [UInt8], _ packets: UInt64, _ bytes: UInt64) -> Void
    ) throws(NetlinkError) {
        try socket.forEachElement(family: family.protocolFamily, table: table, set: set) { element in
            for case let .counter(packets, bytes) in element.expressions {
                body(element.key, packets, bytes)
                return
            }
        }
    }
}

extension SetElement {
    /// The bytes of an element key as the kernel holds them: the fields of a concatenation
    /// each padded to a multiple of 4 bytes with zeros, a single field as it is. What
    /// ``KernelReader/forEachCountedElement(_:_:set:_:)`` gives, so a caller can index
    /// elements it expects by these bytes instead of decoding every element it reads.
    public static func kernelBytes(ofKey key: [Value]) -> [UInt8] { SetLayout.bytes(of: key) }
}
