import Foundation
import XCTest

@testable import Conntrack
import Netlink
import ServiceModel

/// Skips the calling test unless it runs as root.
func conntrackRequireRoot() throws {
    if geteuid() != 0 {
        throw XCTSkip("requires root: creates network namespaces, nft NAT rules and conntrack entries in them")
    }
}

/// An IP address literal the test knows to be valid.
func ctIP(_ text: String) -> IPAddress {
    guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
    return address
}

/// Two private network namespaces joined by a veth pair, with IPv4 and IPv6 addresses
/// from the documentation/benchmark ranges:
///
/// ```
///  node (client)                          endpoints
///  ct0 198.19.1.1/24, 2001:db8:1::1/64 ── ct1 198.19.1.11, .12/24, 2001:db8:1::11, ::12/64
///  lo  203.0.113.1/32 (a second local address, for NodePort traffic)
///  routes: 198.18.0.0/24 and 2001:db8:ff::/64 (service addresses) via ct0
/// ```
///
/// The node namespace gets nft NAT rules (test only) in `ip`/`ip6` tables; traffic
/// only flows between these two namespaces. ``remove()`` deletes both.
final class ConntrackSandbox {
    /// `ip netns` names.
    let nodeName: String
    let endpointName: String

    /// The namespaces, for sockets.
    let node: NetworkNamespace
    let endpoints: NetworkNamespace

    private var created: [String] = []

    init() throws {
        let base = "nftp-ct-\(getpid())-\(String(UInt32.random(in: 0...0xFFFFFF), radix: 16))"
        nodeName = base
        endpointName = base + "-ep"
        node = try NetworkNamespace(named: nodeName)
        endpoints = try NetworkNamespace(named: endpointName)
        do {
            for name in [nodeName, endpointName] {
                try Self.checked(["ip", "netns", "add", name])
                created.append(name)
            }
            let setup: [[String]] = [
                ["ip", "-n", nodeName, "link", "add", "ct0", "type", "veth", "peer", "name", "ct1", "netns", endpointName],
                ["ip", "-n", nodeName, "link", "set", "lo", "up"],
                ["ip", "-n", nodeName, "link", "set", "ct0", "up"],
                ["ip", "-n", endpointName, "link", "set", "lo", "up"],
                ["ip", "-n", endpointName, "link", "set", "ct1", "up"],
                ["ip", "-n", nodeName, "addr", "add", "198.19.1.1/24", "dev", "ct0"],
                ["ip", "-n", nodeName, "addr", "add", "203.0.113.1/32", "dev", "lo"],
                ["ip", "-n", nodeName, "-6", "addr", "add", "2001:db8:1::1/64", "dev", "ct0", "nodad"],
                ["ip", "-n", endpointName, "addr", "add", "198.19.1.11/24", "dev", "ct1"],
                ["ip", "-n", endpointName, "addr", "add", "198.19.1.12/24", "dev", "ct1"],
                ["ip", "-n", endpointName, "-6", "addr", "add", "2001:db8:1::11/64", "dev", "ct1", "nodad"],
                ["ip", "-n", endpointName, "-6", "addr", "add", "2001:db8:1::12/64", "dev", "ct1", "nodad"],
                ["ip", "-n", nodeName, "route", "add", "198.18.0.0/24", "dev", "ct0"],
                ["ip", "-n", nodeName, "-6", "route", "add", "2001:db8:ff::/64", "dev", "ct0"],
            ]
            for command in setup { try Self.checked(command) }
        } catch {
            remove()
            throw error
        }
    }

    /// Deletes both namespaces (and everything in them: rules, conntrack entries).
    func remove() {
        for name in created.reversed() { _ = try? netlinkRunCommand(["ip", "netns", "del", name]) }
        created = []
    }

    /// Loads an nft script into the node namespace.
    func nft(_ script: String) throws {
        let file = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(nodeName)-\(UInt32.random(in: 0...UInt32.max)).nft")
        try script.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        try Self.checked(["ip", "netns", "exec", nodeName, "nft", "-f", file.path])
    }

    /// `conntrack ARGUMENTS` in the node namespace (for cross-checks only).
    func conntrackTool(_ arguments: [String]) throws -> String {
        try Self.checked(["ip", "netns", "exec", nodeName, "conntrack"] + arguments).output
    }

    /// A netlink socket in the node namespace.
    func socket() throws -> NetlinkSocket { try NetlinkSocket(namespace: node) }

    @discardableResult
    static func checked(_ command: [String]) throws -> NetlinkCommandResult {
        let result = try netlinkRunCommand(command)
        guard result.status == 0 else {
            throw NetlinkTestFailure("\(command.joined(separator: " ")) failed (\(result.status)): \(result.errorOutput)")
        }
        return result
    }
}

/// A UDP or TCP socket opened in a given namespace, driven from the test thread.
final class TestSocket {
    let descriptor: Int32
    let family: IPFamily

    init(in namespace: NetworkNamespace, family: IPFamily, tcp: Bool = false) throws {
        let domain = family == .v4 ? AF_INET : AF_INET6
        let type = Int32(tcp ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let descriptor = try namespace.run { () throws(NetlinkError) -> Int32 in Glibc.socket(domain, type, 0) }
        guard descriptor >= 0 else { throw Self.failure("socket") }
        self.descriptor = descriptor
        self.family = family
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(descriptor) }

    func bind(_ address: IPAddress, _ port: UInt16) throws {
        let result = Self.withSocketAddress(address, port) { Glibc.bind(descriptor, $0, $1) }
        guard result == 0 else { throw Self.failure("bind \(address) \(port)") }
    }

    func listen() throws {
        guard Glibc.listen(descriptor, 16) == 0 else { throw Self.failure("listen") }
    }

    /// A blocking connect (over the veth pair the handshake takes well under a second).
    func connect(_ address: IPAddress, _ port: UInt16) throws {
        let result = Self.withSocketAddress(address, port) { Glibc.connect(descriptor, $0, $1) }
        guard result == 0 else { throw Self.failure("connect \(address) \(port)") }
    }

    func send(to address: IPAddress, _ port: UInt16, _ text: String = "x") throws {
        let bytes = Array(text.utf8)
        let result = Self.withSocketAddress(address, port) { pointer, length in
            bytes.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, 0, pointer, length) }
        }
        guard result == bytes.count else { throw Self.failure("sendto \(address) \(port)") }
    }

    /// One datagram and its sender, or nil after `milliseconds`.
    func receive(milliseconds: Int32 = 3000) throws -> (text: String, address: IPAddress, port: UInt16)? {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, milliseconds) > 0 else { return nil }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var buffer = [UInt8](repeating: 0, count: 2048)
        let count = withUnsafeMutablePointer(to: &storage) { storage in
            storage.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                buffer.withUnsafeMutableBytes { recvfrom(descriptor, $0.baseAddress, $0.count, 0, address, &length) }
            }
        }
        guard count >= 0 else { throw Self.failure("recvfrom") }
        let (address, port) = Self.decode(storage)
        return (String(decoding: buffer[..<count], as: UTF8.self), address, port)
    }

    /// The locally bound port.
    var localPort: UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { storage in
            storage.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Self.decode(storage).1
    }

    private static func decode(_ storage: sockaddr_storage) -> (IPAddress, UInt16) {
        let family = Int32(storage.ss_family)
        return withUnsafeBytes(of: storage) { raw in
            if family == AF_INET {
                let address = raw.baseAddress!.loadUnaligned(as: sockaddr_in.self)
                let bytes = withUnsafeBytes(of: address.sin_addr) { Array($0) }
                return (IPAddress(bytes: bytes)!, UInt16(bigEndian: address.sin_port))
            }
            let address = raw.baseAddress!.loadUnaligned(as: sockaddr_in6.self)
            let bytes = withUnsafeBytes(of: address.sin6_addr) { Array($0) }
            return (IPAddress(bytes: bytes)!, UInt16(bigEndian: address.sin6_port))
        }
    }

    private static func withSocketAddress<Result>(
        _ address: IPAddress, _ port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result
    ) -> Result {
        if address.family == .v4 {
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &socketAddress.sin_addr) { $0.copyBytes(from: address.bytes) }
            return withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        var socketAddress = sockaddr_in6()
        socketAddress.sin6_family = sa_family_t(AF_INET6)
        socketAddress.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &socketAddress.sin6_addr) { $0.copyBytes(from: address.bytes) }
        return withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
    }

    private static func failure(_ what: String) -> NetlinkTestFailure {
        NetlinkTestFailure("\(what) failed: \(String(cString: strerror(errno)))")
    }
}

/// Creates conntrack entries directly (`IPCTNL_MSG_CT_NEW` with `NLM_F_CREATE`), as
/// conntrackd does, to fill a table quickly without traffic.
enum ConntrackEntryFactory {
    /// One request per flow; the kernel answers each. Returns the outcomes.
    static func create(_ flows: [ConntrackFlow], timeoutSeconds: UInt32 = 600, on socket: NetlinkSocket) throws
        -> [NetlinkRequestOutcome]
    {
        var requests = NetlinkRequestList()
        for flow in flows {
            requests.append(
                subsystem: .conntrack, type: ConntrackWire.newEntry,
                family: ConntrackMessage.netfilterFamily(flow.family),
                flags: NetlinkFlags.create | NetlinkFlags.exclusive
            ) { message in
                ConntrackMessage.putTuple(flow.original, transport: flow.transport, type: ConntrackWire.Attribute.originalTuple, into: message)
                ConntrackMessage.putTuple(flow.reply, transport: flow.transport, type: ConntrackWire.Attribute.replyTuple, into: message)
                message.put(ConntrackWire.Attribute.timeout, bigEndian32: timeoutSeconds)
                if flow.zone != 0 { message.put(ConntrackWire.Attribute.zone, bigEndian16: flow.zone) }
            }
        }
        return try socket.perform(requests)
    }
}

/// Lines of `conntrack -L` output that describe `flow` (original and reply tuples).
func conntrackToolLines(_ listing: String, describing flow: ConntrackFlow) -> [Substring] {
    func tuple(_ tuple: FlowTuple) -> String {
        "src=\(tuple.source) dst=\(tuple.destination) sport=\(tuple.sourcePort) dport=\(tuple.destinationPort)"
    }
    let original = tuple(flow.original)
    let reply = tuple(flow.reply)
    return listing.split(separator: "\n").filter {
        $0.hasPrefix(flow.transport.rawValue) && $0.contains(original + " ") && $0.contains(reply + " ")
    }
}
