import CNetfilter
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

/// Small libnftnl-based message builders, standing in for the Nftables module's encoder.
enum TestMessages {
    static let ip = UInt8(NFPROTO_IPV4)
    static let ip6 = UInt8(NFPROTO_IPV6)

    static let newTable = UInt16(NFT_MSG_NEWTABLE.rawValue)
    static let deleteTable = UInt16(NFT_MSG_DELTABLE.rawValue)
    static let newChain = UInt16(NFT_MSG_NEWCHAIN.rawValue)
    static let newSet = UInt16(NFT_MSG_NEWSET.rawValue)
    static let newSetElements = UInt16(NFT_MSG_NEWSETELEM.rawValue)

    static let create = UInt16(NLM_F_CREATE)

    /// Appends "add table FAMILY NAME".
    static func addTable(_ batch: inout NetlinkBatch, _ name: String, family: UInt8 = ip) {
        batch.append("add table \(familyName(family)) \(name)", type: newTable, family: family, flags: create) {
            message in
            let table = nftnl_table_alloc()!
            defer { nftnl_table_free(table) }
            nftnl_table_set_str(table, UInt16(NFTNL_TABLE_NAME.rawValue), name)
            nftnl_table_nlmsg_build_payload(message, table)
        }
    }

    /// Appends "delete table FAMILY NAME".
    static func deleteTable(_ batch: inout NetlinkBatch, _ name: String, family: UInt8 = ip) {
        batch.append("delete table \(familyName(family)) \(name)", type: deleteTable, family: family) { message in
            let table = nftnl_table_alloc()!
            defer { nftnl_table_free(table) }
            nftnl_table_set_str(table, UInt16(NFTNL_TABLE_NAME.rawValue), name)
            nftnl_table_nlmsg_build_payload(message, table)
        }
    }

    /// Appends "add chain FAMILY TABLE NAME" (a regular chain, no hook).
    static func addChain(_ batch: inout NetlinkBatch, table: String, _ name: String, family: UInt8 = ip) {
        batch.append("add chain \(familyName(family)) \(table) \(name)", type: newChain, family: family, flags: create) {
            message in
            let chain = nftnl_chain_alloc()!
            defer { nftnl_chain_free(chain) }
            nftnl_chain_set_str(chain, UInt16(NFTNL_CHAIN_TABLE.rawValue), table)
            nftnl_chain_set_str(chain, UInt16(NFTNL_CHAIN_NAME.rawValue), name)
            nftnl_chain_nlmsg_build_payload(message, chain)
        }
    }

    /// Appends "delete chain FAMILY TABLE NAME".
    static func deleteChain(_ batch: inout NetlinkBatch, table: String, _ name: String, family: UInt8 = ip) {
        batch.append(
            "delete chain \(familyName(family)) \(table) \(name)", type: UInt16(NFT_MSG_DELCHAIN.rawValue),
            family: family
        ) { message in
            let chain = nftnl_chain_alloc()!
            defer { nftnl_chain_free(chain) }
            nftnl_chain_set_str(chain, UInt16(NFTNL_CHAIN_TABLE.rawValue), table)
            nftnl_chain_set_str(chain, UInt16(NFTNL_CHAIN_NAME.rawValue), name)
            nftnl_chain_nlmsg_build_payload(message, chain)
        }
    }

    /// nft's `ipv4_addr` data type number.
    static let ipv4AddressType: UInt32 = 7

    /// Appends "add set ip TABLE NAME { type ipv4_addr; }".
    static func addAddressSet(_ batch: inout NetlinkBatch, table: String, _ name: String, id: UInt32) {
        batch.append("add set ip \(table) \(name)", type: newSet, family: ip, flags: create) { message in
            let set = nftnl_set_alloc()!
            defer { nftnl_set_free(set) }
            nftnl_set_set_str(set, UInt16(NFTNL_SET_TABLE.rawValue), table)
            nftnl_set_set_str(set, UInt16(NFTNL_SET_NAME.rawValue), name)
            nftnl_set_set_u32(set, UInt16(NFTNL_SET_KEY_TYPE.rawValue), ipv4AddressType)
            nftnl_set_set_u32(set, UInt16(NFTNL_SET_KEY_LEN.rawValue), 4)
            nftnl_set_set_u32(set, UInt16(NFTNL_SET_ID.rawValue), id)
            nftnl_set_set_u32(set, UInt16(NFTNL_SET_FAMILY.rawValue), UInt32(ip))
            nftnl_set_nlmsg_build_payload(message, set)
        }
    }

    /// Appends one "add element ip TABLE SET { … }" message with the given IPv4 addresses
    /// (host-order integers).
    static func addAddresses(_ batch: inout NetlinkBatch, table: String, set name: String, _ addresses: [UInt32]) {
        batch.append(
            "add element ip \(table) \(name) (\(addresses.count) elements)",
            type: newSetElements, family: ip, flags: create
        ) { message in
            let set = nftnl_set_alloc()!
            defer { nftnl_set_free(set) }
            nftnl_set_set_str(set, UInt16(NFTNL_SET_TABLE.rawValue), table)
            nftnl_set_set_str(set, UInt16(NFTNL_SET_NAME.rawValue), name)
            for address in addresses {
                let element = nftnl_set_elem_alloc()!
                var key = address.bigEndian
                nftnl_set_elem_set(element, UInt16(NFTNL_SET_ELEM_KEY), &key, 4)
                nftnl_set_elem_add(set, element)
            }
            nftnl_set_elems_nlmsg_build_payload(message, set)
        }
    }

    static func familyName(_ family: UInt8) -> String {
        family == ip ? "ip" : family == ip6 ? "ip6" : "family \(family)"
    }
}

/// Parses a dumped `NFT_MSG_NEWTABLE` message into "family name".
func tableDescription(_ message: UnsafePointer<nlmsghdr>) throws -> String {
    let table = nftnl_table_alloc()!
    defer { nftnl_table_free(table) }
    guard nftnl_table_nlmsg_parse(message, table) == 0 else {
        throw NetlinkTestFailure("unparseable table message")
    }
    let name = String(cString: nftnl_table_get_str(table, UInt16(NFTNL_TABLE_NAME.rawValue)))
    let family = UInt8(nftnl_table_get_u32(table, UInt16(NFTNL_TABLE_FAMILY.rawValue)))
    return "\(TestMessages.familyName(family)) \(name)"
}

/// Counts the elements in a dumped `NFT_MSG_NEWSETELEM` message.
func elementCount(_ message: UnsafePointer<nlmsghdr>) throws -> Int {
    let set = nftnl_set_alloc()!
    defer { nftnl_set_free(set) }
    guard nftnl_set_elems_nlmsg_parse(message, set) == 0 else {
        throw NetlinkTestFailure("unparseable set element message")
    }
    let iterator = nftnl_set_elems_iter_create(set)!
    defer { nftnl_set_elems_iter_destroy(iterator) }
    var count = 0
    while nftnl_set_elems_iter_next(iterator) != nil { count += 1 }
    return count
}

/// Inode of a namespace file, to tell namespaces apart.
func namespaceInode(_ path: String) -> UInt64 {
    var status = stat()
    guard stat(path, &status) == 0 else { return 0 }
    return UInt64(status.st_ino)
}
