import Foundation
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
    /// Drops what differs between two loads of the same ruleset: handles, metainfo, element order.
    static func normalize(_ value: Any) -> Any {
        if let dictionary = value as? [String: Any] {
            var result: [String: Any] = [:]
            for (key, item) in dictionary where key != "handle" && key != "metainfo" {
                result[key] = normalize(item)
            }
            if let elements = result["elem"] as? [Any] {
                result["elem"] = elements.map(normalize).sorted { canonicalText($0) < canonicalText($1) }
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

    static func canonicalText(_ value: Any) -> String {
        guard JSONSerialization.isValidJSONObject(value),
              let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) else {
            return "\(value)"
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func normalizeBytecode(_ listing: String) -> String {
        var blocks: [[String]] = []
        for line in listing.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) {
            if line.first?.isWhitespace == false || blocks.isEmpty {
                // Header: "ip nftproxy services 26" -> drop the trailing handle.
                var words = line.split(separator: " ").map(String.init)
                if words.count == 3, Int(words[2]) != nil { words.removeLast() }
                blocks.append([words.joined(separator: " ")])
            } else {
                blocks[blocks.count - 1].append(line)
            }
        }
        return blocks.map { block in
            let header = block[0]
            let body = Array(block.dropFirst())
            // Element order is the kernel's hash order: sort element lines.
            return ([header] + (header.contains(" @") ? body.sorted() : body)).joined(separator: "\n")
        }.joined(separator: "\n")
    }
}
