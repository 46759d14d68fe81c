import Netlink

extension KernelReader {
    /// Calls `body` with every element that carries a counter in the sets of table `name`
    /// that `select` gives a tag: the tag, the element's key as the kernel holds it
    /// (``SetElement/kernelBytes(ofKey:)``), and its packets and bytes. One dump per set, and
    /// nothing decoded but the counter: a scrape of 200,000 counted elements then costs what
    /// the kernel spends on the dumps. Returns false when the kernel has no such table.
    public func forEachCountedElement<Tag>(
        _ family: TableFamily, _ name: String, sets select: (String) -> Tag?,
        _ body: (_ set: Tag, _ key: [UInt8], _ packets: UInt64, _ bytes: UInt64) -> Void
    ) throws(NetlinkError) -> Bool {
        let protocolFamily = family.protocolFamily
        guard try socket.tables(family: protocolFamily).contains(where: { $0.name == name }) else { return false }
        let selected = try socket.sets(family: protocolFamily, table: name).compactMap { wire in
            select(wire.name).map { (wire.name, $0) }
        }
        for (set, tag) in selected {
            try socket.forEachElement(family: protocolFamily, table: name, set: set) { element in
                for case let .counter(packets, bytes) in element.expressions {
                    body(tag, element.key, packets, bytes)
                    return
                }
            }
        }
        return true
    }
}

extension SetElement {
    /// The bytes of an element key as the kernel holds them: the fields of a concatenation
    /// each padded to a multiple of 4 bytes with zeros, a single field as it is. What
    /// ``KernelReader/forEachCountedElement(_:_:sets:_:)`` gives, so a caller can index
    /// elements it expects by these bytes instead of decoding every element it reads.
    public static func kernelBytes(ofKey key: [Value]) -> [UInt8] { SetLayout.bytes(of: key) }
}
