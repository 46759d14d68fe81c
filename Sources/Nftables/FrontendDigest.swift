/// A frontend's digest: a stable 64-bit hash of everything a table holds for one frontend in
/// its derived maps (``DerivedKeys``: the backends maps), kept in the comment of the
/// frontend's element in ``setName`` or ``nodePortSetName`` so that a later read-back can
/// tell, without reading a single backends element, whether the kernel holds for that
/// frontend what is desired (docs/ruleset.md, "Trusted read-back").
///
/// Not in the verdict-map elements' comments: a commit that adds an element with a jump or
/// goto verdict makes nf_tables validate the table's whole jump graph, every element of
/// every verdict map included, which made each single-endpoint change about 2.5 ms slower
/// at 10,000 services; elements of a plain set cost nothing of the kind.
///
/// What is hashed, for a frontend whose verdict-map elements have key `K`: for every derived
/// map holding elements keyed `K . slot`, in the order of the maps' names, the map's name, its
/// modulus (the numgen range of the rules that read it) and its element count, then each such
/// element in slot order: the slot, the data, the comment. Values are hashed with a tag of
/// their kind and their kernel bytes, so no two different inputs share an encoding.
///
/// The hash is FNV-1a over those bytes: deterministic across processes, builds and machines
/// (unlike Swift's `Hasher`, seeded per process), so a digest written by one process is
/// understood by the next. It is not a defence against an adversary (a writer that can
/// change our tables can as well write a matching digest); it detects what changed.
public struct FrontendDigest: Hashable, Sendable {
    public private(set) var value: UInt64

    private static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let prime: UInt64 = 0x0000_0100_0000_01b3

    /// The digest of nothing; ``add(map:modulus:elements:)`` adds to it.
    public init() { value = Self.offsetBasis }

    /// A digest read back from a comment.
    public init(value: UInt64) { self.value = value }

    /// Adds one derived map's elements of the frontend (full keys `K . slot`, in slot order).
    public mutating func add(map: String, modulus: UInt32, elements: some Collection<SetElement>) {
        for byte in map.utf8 { addByte(byte) }
        addByte(0)
        addWord(modulus)
        addWord(UInt32(truncatingIfNeeded: elements.count))
        for element in elements {
            addValue(element.key.last)
            switch element.data {
            case nil: addByte(0)
            case .verdict: addByte(1)  // not found in derived maps; marked, not detailed
            case .values(let values)?:
                addByte(2)
                addWord(UInt32(truncatingIfNeeded: values.count))
                for value in values { addValue(value) }
            }
            if let comment = element.comment {
                addByte(1)
                addWord(UInt32(truncatingIfNeeded: comment.utf8.count))
                for byte in comment.utf8 { addByte(byte) }
            } else {
                addByte(0)
            }
        }
    }

    /// The digest of a frontend's derived elements, given per map (any order: sorted here by name).
    public static func of(_ maps: [(map: String, modulus: UInt32, elements: [SetElement])]) -> FrontendDigest {
        var digest = FrontendDigest()
        for part in maps.sorted(by: { $0.map < $1.map }) {
            digest.add(map: part.map, modulus: part.modulus, elements: part.elements)
        }
        return digest
    }

    private mutating func addByte(_ byte: UInt8) {
        value = (value ^ UInt64(byte)) &* Self.prime
    }

    private mutating func addWord(_ word: UInt32) {
        addByte(UInt8(truncatingIfNeeded: word))
        addByte(UInt8(truncatingIfNeeded: word >> 8))
        addByte(UInt8(truncatingIfNeeded: word >> 16))
        addByte(UInt8(truncatingIfNeeded: word >> 24))
    }

    private mutating func addValue(_ value: Value?) {
        switch value {
        case nil: addByte(0)
        case .address(let address)?:
            addByte(address.family == .v4 ? 4 : 6)
            var bytes: [UInt8] = []
            bytes.reserveCapacity(16)
            address.appendBytes(to: &bytes)
            for byte in bytes { addByte(byte) }
        case .proto(let proto)?: addByte(7); addByte(proto)
        case .port(let port)?: addByte(8); addByte(UInt8(port >> 8)); addByte(UInt8(port & 0xff))
        case .integer(let integer)?: addByte(9); addWord(integer)
        }
    }
}

extension FrontendDigest {
    /// The set holding, for every frontend with an address (`address . protocol . port`)
    /// and backends, an element commented with its digest; no rule refers to it.
    public static let setName = "frontend-digests"
    /// The same for NodePorts (`protocol . port`).
    public static let nodePortSetName = "nodeport-digests"
    /// Both.
    public static let setNames: Set<String> = [setName, nodePortSetName]

    /// How a digest appears in a comment: `d=` and 16 lowercase hex digits.
    static let marker = "d="
    static let hexDigits = 16

    /// The comment token: `d=0123456789abcdef`.
    public var token: String {
        let hex = String(value, radix: 16)
        return Self.marker + String(repeating: "0", count: Self.hexDigits - hex.utf8.count) + hex
    }

    /// The digest a comment written as ``token`` holds; nil for any other text.
    public init?(comment: String) {
        let word = comment.utf8
        guard word.count == Self.marker.utf8.count + Self.hexDigits, word.starts(with: Self.marker.utf8),
              let text = String(word.dropFirst(Self.marker.utf8.count)),
              text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                                     || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }),
              let value = UInt64(text, radix: 16) else { return nil }
        self.init(value: value)
    }
}
