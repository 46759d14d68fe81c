import Foundation
import XCTest

@testable import Netlink

/// Skips the calling test unless it runs as root (network namespaces and nf_tables need it).
func netlinkRequireRoot() throws {
    if geteuid() != 0 {
        throw XCTSkip("requires root: creates network namespaces and programs nf_tables in them")
    }
}

/// The output of a finished command.
struct NetlinkCommandResult {
    let status: Int32
    let output: String
    let errorOutput: String
}

/// Runs `arguments` (the first one looked up in PATH) and waits for it.
@discardableResult
func netlinkRunCommand(_ arguments: [String]) throws -> NetlinkCommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    // Read before waiting, so a large listing cannot fill the pipe and stall the child.
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return NetlinkCommandResult(
        status: process.terminationStatus,
        output: String(decoding: outputData, as: UTF8.self),
        errorOutput: String(decoding: errorData, as: UTF8.self))
}

/// A private network namespace made with `ip netns add` for one test; `remove()` deletes it.
final class NetlinkTestNamespace {
    /// The `ip netns` name, unique to this process and test.
    let name: String

    /// The namespace, for ``NetlinkSocket/init(namespace:)``.
    let namespace: NetworkNamespace

    init() throws {
        let name = "nftproxy-test-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        let result = try netlinkRunCommand(["ip", "netns", "add", name])
        guard result.status == 0 else {
            throw NetlinkTestFailure("ip netns add \(name) failed: \(result.errorOutput)")
        }
        self.name = name
        self.namespace = try NetworkNamespace(named: name)
    }

    /// Deletes the namespace (and with it everything programmed into it).
    func remove() {
        _ = try? netlinkRunCommand(["ip", "netns", "del", name])
    }

    /// A new netlink socket bound to this namespace.
    func socket() throws -> NetlinkSocket {
        try NetlinkSocket(namespace: namespace)
    }

    /// `nft ARGUMENTS` run inside the namespace; fails the test on a non-zero exit.
    func nft(_ arguments: String...) throws -> String {
        let result = try netlinkRunCommand(["ip", "netns", "exec", name, "nft"] + arguments)
        guard result.status == 0 else {
            throw NetlinkTestFailure("nft \(arguments.joined(separator: " ")) failed: \(result.errorOutput)")
        }
        return result.output
    }
}

/// A test setup failure with a message.
struct NetlinkTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Small message builders on the wire layer's typed API, standing in for the Nftables module's encoder.
enum TestMessages {
    static let ip = NetfilterFamily.ipv4
    static let ip6 = NetfilterFamily.ipv6

    static let newTable = NftMessage.newTable
    static let deleteTable = NftMessage.deleteTable
    static let newChain = NftMessage.newChain
    static let newSet = NftMessage.newSet
    static let newSetElements = NftMessage.newElements

    static let create = NetlinkFlags.create

    /// Appends "add table FAMILY NAME".
    static func addTable(_ batch: inout NetlinkBatch, _ name: String, family: UInt8 = ip) throws {
        try batch.append("add table \(familyName(family)) \(name)", type: newTable, family: family, flags: create) {
            (message) throws(NetlinkError) in try message.putTable(NftTable(name: name))
        }
    }

    /// Appends "delete table FAMILY NAME".
    static func deleteTable(_ batch: inout NetlinkBatch, _ name: String, family: UInt8 = ip) throws {
        try batch.append("delete table \(familyName(family)) \(name)", type: deleteTable, family: family) {
            (message) throws(NetlinkError) in try message.putTable(NftTable(name: name))
        }
    }

    /// Appends "add chain FAMILY TABLE NAME" (a regular chain, no hook).
    static func addChain(_ batch: inout NetlinkBatch, table: String, _ name: String, family: UInt8 = ip) throws {
        try batch.append("add chain \(familyName(family)) \(table) \(name)", type: newChain, family: family, flags: create) {
            (message) throws(NetlinkError) in try message.putChain(NftChain(table: table, name: name))
        }
    }

    /// Appends "delete chain FAMILY TABLE NAME".
    static func deleteChain(_ batch: inout NetlinkBatch, table: String, _ name: String, family: UInt8 = ip) throws {
        try batch.append("delete chain \(familyName(family)) \(table) \(name)", type: NftMessage.deleteChain, family: family) {
            (message) throws(NetlinkError) in try message.putChain(NftChain(table: table, name: name))
        }
    }

    /// nft's `ipv4_addr` data type number.
    static let ipv4AddressType: UInt32 = 7

    /// Appends "add set ip TABLE NAME { type ipv4_addr; }".
    static func addAddressSet(_ batch: inout NetlinkBatch, table: String, _ name: String, id: UInt32) throws {
        try batch.append("add set ip \(table) \(name)", type: newSet, family: ip, flags: create) {
            (message) throws(NetlinkError) in
            try message.putSet(NftSet(family: ip, table: table, name: name, keyType: ipv4AddressType, keyLength: 4, id: id))
        }
    }

    /// Appends one "add element ip TABLE SET { … }" message with the given IPv4 addresses
    /// (host-order integers).
    static func addAddresses(_ batch: inout NetlinkBatch, table: String, set name: String, _ addresses: [UInt32]) throws {
        try batch.append(
            "add element ip \(table) \(name) (\(addresses.count) elements)",
            type: newSetElements, family: ip, flags: create
        ) { (message) throws(NetlinkError) in
            let elements = addresses.map { address in
                NftSetElement(key: withUnsafeBytes(of: address.bigEndian) { Array($0) })
            }
            try message.putElements(NftSet(table: table, name: name, elements: elements))
        }
    }

    static func familyName(_ family: UInt8) -> String {
        family == ip ? "ip" : family == ip6 ? "ip6" : "family \(family)"
    }
}

/// Parses a dumped `NFT_MSG_NEWTABLE` message into "family name".
func tableDescription(_ message: NetlinkMessageView) throws -> String {
    let table = try NftTable(parsing: message)
    return "\(TestMessages.familyName(table.family ?? 0)) \(table.name)"
}

/// Counts the elements in a dumped `NFT_MSG_NEWSETELEM` message.
func elementCount(_ message: NetlinkMessageView) throws -> Int {
    try NftSet(parsingElements: message).elements.count
}

/// Inode of a namespace file, to tell namespaces apart.
func namespaceInode(_ path: String) -> UInt64 {
    var status = stat()
    guard stat(path, &status) == 0 else { return 0 }
    return UInt64(status.st_ino)
}
