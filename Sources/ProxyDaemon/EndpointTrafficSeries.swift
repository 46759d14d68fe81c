import NIOCore
import Nftables
import ProxyCompiler
import ServiceModel

/// The endpoint series one programmed map exports, computed once per map: each exported
/// endpoint's labels as Prometheus text, which counting elements add to it (indexed by the
/// bytes of their keys, as a dump gives them), and how many endpoints the limit leaves out.
/// A scrape then adds each counter it dumps to the series its key names and writes the
/// text, without decoding an element, grouping frontends or formatting a label: the same
/// text ``EndpointTrafficMetrics/text(_:limit:)`` gives for the map's groups.
struct EndpointTrafficSeries: Sendable {
    /// An element key's bytes (at most 48: an IPv6 pair is 44) and its table's family, as one
    /// hashable value.
    struct PackedKey: Hashable, Sendable {
        private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
        private var length: UInt8
        private var family: UInt8

        init?(family: TableFamily, bytes: [UInt8]) { self.init(family: family, bytes: bytes, []) }

        /// The key whose bytes are `bytes` followed by `more`.
        init?(family: TableFamily, bytes: [UInt8], _ more: [UInt8]) {
            guard bytes.count + more.count <= 48 else { return nil }
            length = UInt8(bytes.count + more.count)
            self.family = family == .ip ? 4 : 6
            withUnsafeMutableBytes(of: &words) { words in
                bytes.withUnsafeBytes { words.copyMemory(from: $0) }
                more.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: words[bytes.count...]).copyMemory(from: $0) }
            }
        }

        static func == (lhs: PackedKey, rhs: PackedKey) -> Bool {
            lhs.length == rhs.length && lhs.family == rhs.family && lhs.words.0 == rhs.words.0
                && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2 && lhs.words.3 == rhs.words.3
                && lhs.words.4 == rhs.words.4 && lhs.words.5 == rhs.words.5
        }

        /// The words folded into one before hashing: a scrape looks up 200,000 keys, and the
        /// hasher takes one word instead of six (equality still compares every byte).
        func hash(into hasher: inout Hasher) {
            func mix(_ folded: UInt64, _ word: UInt64) -> UInt64 {
                let product = (folded ^ word) &* 0x9E37_79B9_7F4A_7C15
                return product ^ product >> 29
            }
            var folded = UInt64(length) << 8 | UInt64(family)
            folded = mix(mix(mix(folded, words.0), words.1), words.2)
            folded = mix(mix(mix(folded, words.3), words.4), words.5)
            hasher.combine(folded)
        }
    }

    /// Each series' labels with their braces and the space before the value
    /// (`{namespace="…",…,local="…"} `), back to back in export order.
    private var labelText: [UInt8] = []
    /// Where each series' labels end in `labelText`.
    private var labelEnds: [Int] = []
    /// The series each counting element adds to, by its key.
    private var seriesByKey: [PackedKey: Int] = [:]
    /// Every frontend with endpoints (what open connections are counted for).
    private(set) var frontendKeys = Set<ProgrammedFrontend.Key>()
    /// Endpoints left out by the limit.
    private(set) var dropped = 0

    /// The number of series.
    var count: Int { labelEnds.count }

    /// The series of `ports` (``ProgrammedEndpoints/ports`` of the programmed map), at most
    /// `limit` (0: all), in the order the text lists them.
    init(_ ports: [ProgrammedEndpoints.PortEndpoints], limit: Int) {
        seriesByKey.reserveCapacity(ports.reduce(0) { $0 + $1.pairs.count })
        for port in ports {
            for frontend in port.frontends { frontendKeys.insert(frontend.key) }
            let shared = Array(EndpointTrafficMetrics.sharedLabels(port.service, port: port.portLabel).utf8)
            let first = count
            for index in port.endpoints.indices {
                guard limit == 0 || count < limit else { dropped += 1; continue }
                labelText.append(UInt8(ascii: "{"))
                EndpointTrafficMetrics.appendLabels(shared: shared, target: port.endpoints[index].target.description,
                                                    node: port.endpoints[index].names.node,
                                                    local: port.endpoints[index].names.local, to: &labelText)
                labelText.append(contentsOf: "} ".utf8)
                labelEnds.append(labelText.count)
            }
            // A pair's key is its frontend's fields, then its endpoint's, each padded alike.
            let frontendBytes = port.frontends.map { Self.bytes(of: $0.key) }
            let endpointBytes = port.endpoints.indices.map { first + $0 < count ? Self.bytes(of: port.endpoints[$0].target) : [] }
            for pair in port.pairs where first + pair.endpoint < count {
                guard let frontend = port.frontends.firstIndex(where: { $0.key == pair.frontend }),
                      let key = PackedKey(family: pair.frontend.family == .v4 ? .ip : .ip6,
                                          bytes: frontendBytes[frontend], endpointBytes[pair.endpoint]) else { continue }
                seriesByKey[key] = first + pair.endpoint
            }
        }
    }

    /// The counting element key of a frontend and one of its endpoints:
    /// `[address .] protocol . port . endpoint address . port` (docs/ruleset.md).
    private static func key(_ frontend: ProgrammedFrontend.Key, _ target: ProgrammedFrontend.Target) -> PackedKey? {
        PackedKey(family: frontend.family == .v4 ? .ip : .ip6, bytes: bytes(of: frontend), bytes(of: target))
    }

    /// The key fields of a frontend, as the kernel holds them.
    private static func bytes(of frontend: ProgrammedFrontend.Key) -> [UInt8] {
        SetElement.kernelBytes(ofKey: (frontend.address.map { [Value.address($0)] } ?? [])
                                   + [.proto(frontend.transport.number), .port(frontend.port)])
    }

    /// The key fields of an endpoint, as the kernel holds them.
    private static func bytes(of target: ProgrammedFrontend.Target) -> [UInt8] {
        SetElement.kernelBytes(ofKey: [.address(target.address), .port(target.port)])
    }

    /// What a scrape adds up per series: the counters of the elements its pairs have, summed
    /// over a port's frontends, and the connections conntrack holds open.
    struct Counts: Sendable {
        var connections: [UInt64]
        var packets: [UInt64]
        var bytes: [UInt64]
        var open: [UInt64]

        /// Adds what another read of the same series counted.
        mutating func add(_ other: Counts) {
            for index in connections.indices {
                connections[index] &+= other.connections[index]
                packets[index] &+= other.packets[index]
                bytes[index] &+= other.bytes[index]
                open[index] &+= other.open[index]
            }
        }
    }

    /// All zero, one value per series.
    func zeroCounts() -> Counts {
        let zeros = [UInt64](repeating: 0, count: count)
        return Counts(connections: zeros, packets: zeros, bytes: zeros, open: zeros)
    }

    /// Adds a counting element of a table of `family` (its set's `measure`, its key's bytes
    /// and its counter) to the series its pair belongs to; a pair no exported endpoint has
    /// (another program's, one the limit leaves out, or one already retired) adds nothing.
    func add(_ measure: EndpointTrafficLayout.Measure, key: [UInt8], family: TableFamily,
             packets: UInt64, bytes: UInt64, to counts: inout Counts) {
        guard let packed = PackedKey(family: family, bytes: key), let series = seriesByKey[packed] else { return }
        switch measure {
        case .connections: counts.connections[series] &+= packets
        case .traffic:
            counts.packets[series] &+= packets
            counts.bytes[series] &+= bytes
        }
    }

    /// Adds the open connections of each exported endpoint.
    func add(_ open: OpenConnections, to counts: inout Counts) {
        for (frontend, targets) in open.counts {
            for (target, number) in targets {
                if let key = Self.key(frontend, target), let series = seriesByKey[key] { counts.open[series] &+= number }
            }
        }
    }

    /// Writes the metrics of `counts`: the three counter families, the open connections and
    /// the gauge of endpoints left out, as ``EndpointTrafficMetrics/text(_:limit:)`` does.
    func write(_ counts: Counts, to buffer: inout ByteBuffer) {
        let families = EndpointTrafficMetrics.counterFamilies
        for (family, values) in zip(families, [counts.connections, counts.packets, counts.bytes]) {
            write(name: family.name, help: family.help, type: "counter", values: values, to: &buffer)
        }
        write(name: EndpointTrafficMetrics.openName, help: EndpointTrafficMetrics.openHelp, type: "gauge",
              values: counts.open, to: &buffer)
        buffer.writeString(EndpointTrafficMetrics.droppedText(dropped))
    }

    /// Writes one metric family: `# HELP`, `# TYPE`, and a line per series with its value.
    private func write(name: String, help: String, type: String, values: [UInt64], to buffer: inout ByteBuffer) {
        precondition(values.count == count, "one value per series")
        buffer.writeString("# HELP \(name) \(help)\n# TYPE \(name) \(type)\n")
        let name = Array(name.utf8)
        // Each line: name, labels, at most 20 digits and a newline.
        let bound = count * (name.count + 21) + labelText.count
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { out in
            var at = 0
            labelText.withUnsafeBytes { labels in
                name.withUnsafeBytes { name in
                    var start = 0
                    for (series, end) in labelEnds.enumerated() {
                        out.baseAddress!.advanced(by: at).copyMemory(from: name.baseAddress!, byteCount: name.count)
                        at += name.count
                        out.baseAddress!.advanced(by: at).copyMemory(from: labels.baseAddress!.advanced(by: start),
                                                                     byteCount: end - start)
                        at += end - start
                        start = end
                        at += Self.writeDecimal(values[series], to: out.baseAddress!.advanced(by: at))
                        out[at] = UInt8(ascii: "\n")
                        at += 1
                    }
                }
            }
            return at
        }
    }

    /// Writes `value` in decimal at `pointer`; returns the number of digits (1 to 20).
    private static func writeDecimal(_ value: UInt64, to pointer: UnsafeMutableRawPointer) -> Int {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        return withUnsafeMutableBytes(of: &digits) { scratch in
            var rest = value
            var index = 24
            repeat {
                index -= 1
                scratch[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            let length = 24 - index
            pointer.copyMemory(from: scratch.baseAddress!.advanced(by: index), byteCount: length)
            return length
        }
    }
}
