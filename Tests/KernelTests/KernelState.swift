import Foundation
import Nftables
import Sandbox
import XCTest

/// A private network namespace for one kernel test, removed again in `remove()`.
final class TestNamespace {
    let name: String
    private let runner = CommandRunner()

    init(_ purpose: String) throws {
        name = "nftp-kt-\(getpid())-\(purpose)-\(UInt32.random(in: 0...0xffff))"
        _ = try runner.runChecked(["ip", "netns", "add", name])
    }

    func remove() { _ = try? runner.run(["ip", "netns", "del", name]) }

    /// Runs a command inside the namespace.
    @discardableResult
    func run(_ arguments: [String], input: String? = nil) throws -> CommandResult {
        try runner.run(["ip", "netns", "exec", name] + arguments, input: input)
    }

    /// `nft -j list ruleset` with handles removed and set elements sorted, as canonical JSON.
    func canonicalRuleset() throws -> String {
        let listing = try run(["nft", "-j", "list", "ruleset"]).check().stdout
        let json = try JSONSerialization.jsonObject(with: Data(listing.utf8))
        let canonical = try JSONSerialization.data(withJSONObject: KernelState.normalize(json),
                                                   options: [.sortedKeys, .prettyPrinted])
        return String(decoding: canonical, as: UTF8.self)
    }

    /// `nft --debug=netlink list ruleset`: the bytecode of every rule and the raw bytes of
    /// every element, with handles dropped and element lines sorted.
    func canonicalBytecode() throws -> String {
        let listing = try run(["nft", "--debug=netlink", "list", "ruleset"]).check().stdout
        return KernelState.normalizeBytecode(listing)
    }

    /// Names of the tables in the namespace, as "family name".
    func tables() throws -> [String] {
        try run(["nft", "list", "tables"]).check().lines.map {
            $0.replacingOccurrences(of: "table ", with: "")
        }
    }
}

enum KernelState {
    /// Drops what differs between two loads of the same ruleset: handles, metainfo, element
    /// order, and the time left before elements expire.
    static func normalize(_ value: Any) -> Any {
        if let dictionary = value as? [String: Any] {
            var result: [String: Any] = [:]
            for (key, item) in dictionary where key != "handle" && key != "metainfo" && key != "expires" {
                result[key] = normalize(item)
            }
            if let elements = result["elem"] as? [Any] {
                result["elem"] = elements.map(normalize).sorted { canonicalText($0) < canonicalText($1) }
            }
            // The kernel lists objects in creation order; rules keep their order within a chain.
            // The generation stamp (its value differs from one namespace and commit to the
            // next) is left out.
            if let objects = result["nftables"] as? [Any] {
                result["nftables"] = objects.filter { !isGenerationStamp($0) }.enumerated().sorted { lhs, rhs in
                    let (left, right) = (objectKey(lhs.element), objectKey(rhs.element))
                    return left != right ? left < right : lhs.offset < rhs.offset
                }.map(\.element)
            }
            return result
        }
        if let array = value as? [Any] {
            return array.map(normalize).filter { item in
                !((item as? [String: Any])?.isEmpty ?? false)
            }
        }
        return value
    }

    /// Sort key of a listed object: its kind and name (rules: their chain), not its position.
    static func objectKey(_ object: Any) -> String {
        guard let dictionary = object as? [String: Any], let (kind, body) = dictionary.first,
              let fields = body as? [String: Any] else { return "" }
        let parts = [kind, fields["family"], fields["table"], fields["chain"], fields["name"]]
        return parts.map { "\($0 ?? "")" }.joined(separator: " ")
    }

    /// Whether a listed object is nftproxy's generation stamp set.
    static func isGenerationStamp(_ object: Any) -> Bool {
        guard let set = (object as? [String: Any])?["set"] as? [String: Any] else { return false }
        return set["name"] as? String == GenerationStamp.setName
    }

    static func canonicalText(_ value: Any) -> String {
        guard JSONSerialization.isValidJSONObject(value),
              let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) else {
            return "\(value)"
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func normalizeBytecode(_ listing: String) -> String {
        var blocks: [[String]] = []
        var inPlainListing = false
        for line in listing.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) {
            // The plain `table … { … }` listing that follows is compared as JSON instead.
            if line.hasPrefix("table ") { inPlainListing = true }
            if inPlainListing {
                if line == "}" { inPlainListing = false }
                continue
            }
            if line.first?.isWhitespace == false || blocks.isEmpty {
                // Header: "ip nftproxy services 26 25" -> drop the trailing handle and position.
                var words = line.split(separator: " ").map(String.init)
                while words.count > 3, Int(words[words.count - 1]) != nil { words.removeLast() }
                if words.count == 3, Int(words[2]) != nil { words.removeLast() }
                blocks.append([words.joined(separator: " ")])
            } else {
                blocks[blocks.count - 1].append(line)
            }
        }
        // Object order is creation order: sort blocks by header, keeping rule order (stable).
        // The generation stamp's elements differ from one namespace and commit to the next.
        blocks.removeAll { $0[0].hasSuffix("@" + GenerationStamp.setName) }
        let ordered = blocks.enumerated().sorted { lhs, rhs in
            lhs.element[0] != rhs.element[0] ? lhs.element[0] < rhs.element[0] : lhs.offset < rhs.offset
        }.map(\.element)
        return ordered.map { block in
            let header = block[0]
            let body = Array(block.dropFirst())
            // Element order is the kernel's hash order: sort element lines.
            return ([header] + (header.contains(" @") ? body.sorted() : body)).joined(separator: "\n")
        }.joined(separator: "\n")
    }
}
