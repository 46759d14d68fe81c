/// What a read-back needs to ask the kernel when it may trust the frontends' digests, and
/// how it puts the table together from the answers (docs/ruleset.md, "Trusted read-back").
///
/// It applies when the kernel's table carries a generation stamp equal to the generation
/// the table was read at (``GenerationStamp``): the table is then exactly as an nftproxy
/// commit left it, and every frontend's digest (``FrontendDigest``, in the comment of its
/// element of a digest set) describes what its derived maps hold for it. A frontend whose
/// digest in the kernel equals its digest in the desired table holds there what the desired
/// table holds: its elements are taken from the desired table. Only the keys of the other
/// frontends (changed, removed, or without a digest) are looked up, as an ordinary
/// read-back looks them all up (``DerivedKeys/keys(of:in:)``).
///
/// Plain functions of tables: no kernel access, tested without one.
public struct TrustedReadBack: Sendable {
    /// The verdict-map keys (frontends) whose derived elements are taken from `desired`.
    public let trustedFrontends: Set<[Value]>
    /// The derived maps whose elements may be taken from `desired` (declared alike in both).
    let trustedMaps: Set<String>
    let desired: Table

    /// nil when the digests may not be trusted: `kernel` (declarations, rules and the sets
    /// that are dumped, digest sets included; the derived maps' elements not read yet) has no stamp, or one that is
    /// not `generation`, the generation it was read at.
    public init?(kernel: Table, derived: DerivedKeys, desired: Table, generation: UInt32) {
        guard GenerationStamp.generation(in: kernel) == generation else { return nil }
        let wanted = DerivedKeys(desired)
        let desiredSets = Dictionary(desired.sets.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        trustedMaps = Set(kernel.sets.compactMap { set in
            guard derived.entries[set.name] != nil, wanted.entries[set.name] != nil,
                  let other = desiredSets[set.name], other.key == set.key, other.data == set.data else { return nil }
            return set.name
        })
        let written = Self.writtenDigests(in: kernel)
        var trusted = Set<[Value]>()
        for (frontend, digest) in Self.writtenDigests(in: desired) where written[frontend] == digest {
            trusted.insert(frontend)
        }
        trustedFrontends = trusted
        self.desired = desired
    }

    /// The digests the elements of the digest sets (``FrontendDigest/setNames``) carry in
    /// their comments, by element key (the frontend's verdict-map key).
    static func writtenDigests(in table: Table) -> [[Value]: FrontendDigest] {
        var digests: [[Value]: FrontendDigest] = [:]
        for set in table.sets where FrontendDigest.setNames.contains(set.name) && set.data == nil {
            for element in set.elements {
                guard let comment = element.comment, let digest = FrontendDigest(comment: comment) else { continue }
                digests[element.key] = digest
            }
        }
        return digests
    }

    /// The keys of derived map `map` to look up: those the kernel's verdict maps make reachable
    /// (``DerivedKeys/keys(of:in:)``) for frontends that are not trusted, or all of them when
    /// the map is not trusted. nil where `keys(of:in:)` is nil.
    public func keysToLookUp(of map: String, in kernel: Table, derived: DerivedKeys) -> [[Value]]? {
        derived.keys(of: map, in: kernel, skipping: trustedMaps.contains(map) ? trustedFrontends : [])
    }

    /// The elements of derived map `map`: the desired table's elements of trusted frontends,
    /// in its order, with the elements `lookedUp` (of the other frontends) at the place of
    /// their frontend in it, or after them for frontends it does not have.
    public func elements(of map: String, lookedUp: [SetElement]) -> [SetElement] {
        guard trustedMaps.contains(map),
              let wanted = desired.sets.first(where: { $0.name == map })?.elements else { return lookedUp }
        var others: [[Value]: [SetElement]] = [:]
        var otherOrder: [[Value]] = []
        for element in lookedUp {
            let frontend = Array(element.key.dropLast())
            if others[frontend] == nil { otherOrder.append(frontend) }
            others[frontend, default: []].append(element)
        }
        var result: [SetElement] = []
        result.reserveCapacity(wanted.count + lookedUp.count)
        var previous: [Value]? = nil
        var trusted = false
        for element in wanted {
            // Consecutive elements of one frontend: its prefix is looked up once.
            if previous == nil || !Self.samePrefix(element.key, previous ?? []) {
                let frontend = Array(element.key.dropLast())
                trusted = trustedFrontends.contains(frontend)
                if !trusted, let found = others.removeValue(forKey: frontend) { result += found }
                previous = element.key
            }
            if trusted { result.append(element) }
        }
        for frontend in otherOrder {
            if let found = others[frontend] { result += found }
        }
        return result
    }

    /// Whether two keys `K . slot` have the same `K`.
    private static func samePrefix(_ lhs: [Value], _ rhs: [Value]) -> Bool {
        guard lhs.count == rhs.count, !lhs.isEmpty else { return false }
        for index in 0..<(lhs.count - 1) where lhs[index] != rhs[index] { return false }
        return true
    }
}

extension DerivedKeys {
    /// Every frontend's digest as the elements of `table`'s derived maps give it (the
    /// definition ``FrontendDigest`` implements; the compiler computes the same per frontend
    /// without building a table). Maps read with different moduli are left out.
    public static func digests(of table: Table) -> [[Value]: FrontendDigest] {
        let derived = DerivedKeys(table)
        var parts: [[Value]: [(map: String, modulus: UInt32, elements: [SetElement])]] = [:]
        for set in table.sets {
            guard let entries = derived.entries[set.name], let modulus = entries.first?.modulus,
                  entries.allSatisfy({ $0.modulus == modulus }) else { continue }
            var byFrontend: [[Value]: [SetElement]] = [:]
            var order: [[Value]] = []
            for element in set.elements {
                let frontend = Array(element.key.dropLast())
                if byFrontend[frontend] == nil { order.append(frontend) }
                byFrontend[frontend, default: []].append(element)
            }
            for frontend in order {
                let elements = (byFrontend[frontend] ?? []).sorted {
                    ($0.key.last ?? .integer(0)) < ($1.key.last ?? .integer(0))
                }
                parts[frontend, default: []].append((set.name, modulus, elements))
            }
        }
        return parts.mapValues(FrontendDigest.of)
    }
}
