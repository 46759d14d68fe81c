#if canImport(Glibc)
import Glibc
#endif
import Netlink
import NIOCore
import ServiceModel

/// A health-check port that could not be opened.
public struct HealthCheckListenError: Error, CustomStringConvertible, Equatable {
    public var host: String
    public var port: UInt16
    /// What failed (`socket`, `bind`, `listen`, the namespace) and why.
    public var reason: String

    public init(host: String, port: UInt16, reason: String) {
        self.host = host; self.port = port; self.reason = reason
    }

    public var description: String {
        "cannot listen on \(host.contains(":") ? "[\(host)]" : host):\(port): \(reason)"
    }
}

/// Health-check servers on real sockets, in the network namespace the proxy programs (the
/// process's own, or `--netns`): each socket is created inside that namespace, so it
/// answers on the node's addresses there, then served by an `HTTPEndpointServer`.
public struct NamespaceHealthCheckListening: HealthCheckListening {
    /// nil: the process's own namespace.
    public let namespace: String?

    public init(namespace: String?) { self.namespace = namespace }

    public func listen(port: UInt16, hosts: [String], responder: @escaping HTTPEndpointServer.Responder) async throws
        -> any HealthCheckListener {
        var servers: [HTTPEndpointServer] = []
        do {
            for host in hosts {
                let socket = try inNamespace(host: host, port: port) { () throws(HealthCheckListenError) -> CInt in
                    try Self.boundSocket(host: host, port: port)
                }
                servers.append(try await HTTPEndpointServer.start(boundSocket: socket, responder: responder))
            }
        } catch {
            for server in servers { await server.close() }
            throw error
        }
        return Servers(servers: servers)
    }

    /// This namespace's addresses (but IPv6 link-local ones), for ``HealthCheckAddresses``.
    public func localAddresses() throws(HealthCheckListenError) -> [IPAddress] {
        try inNamespace(host: "*", port: 0) { () throws(HealthCheckListenError) -> [IPAddress] in
            var list: UnsafeMutablePointer<ifaddrs>?
            guard getifaddrs(&list) == 0 else {
                throw HealthCheckListenError(host: "*", port: 0, reason: "getifaddrs: \(String(cString: strerror(errno)))")
            }
            defer { freeifaddrs(list) }
            var addresses: [IPAddress] = []
            var entry = list
            while let current = entry {
                defer { entry = current.pointee.ifa_next }
                guard let address = current.pointee.ifa_addr else { continue }
                switch Int32(address.pointee.sa_family) {
                case AF_INET:
                    let bytes = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                        withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) }
                    }
                    if let ip = IPAddress(bytes: bytes) { addresses.append(ip) }
                case AF_INET6:
                    let bytes = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                        withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                    }
                    // Link-local addresses need a scope to bind to: not a node address.
                    if bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 { continue }
                    if let ip = IPAddress(bytes: bytes) { addresses.append(ip) }
                default:
                    continue
                }
            }
            return addresses
        }
    }

    /// Runs `body` with the calling thread in the namespace (or where it is, without one).
    private func inNamespace<T>(host: String, port: UInt16,
                                _ body: () throws(HealthCheckListenError) -> T) throws(HealthCheckListenError) -> T {
        guard let namespace else { return try body() }
        let result: Result<T, HealthCheckListenError>
        do {
            result = try NetworkNamespace(named: namespace).run { () -> Result<T, HealthCheckListenError> in
                do throws(HealthCheckListenError) { return .success(try body()) } catch { return .failure(error) }
            }
        } catch {
            throw HealthCheckListenError(host: host, port: port, reason: "network namespace \(namespace): \(error)")
        }
        return try result.get()
    }

    /// A TCP socket bound to `host:port` (not yet listening; an IPv6 socket answers IPv6 only,
    /// so `::` and `0.0.0.0` can share a port).
    private static func boundSocket(host: String, port: UInt16) throws(HealthCheckListenError) -> CInt {
        func failure(_ call: String) -> HealthCheckListenError {
            HealthCheckListenError(host: host, port: port, reason: "\(call): \(String(cString: strerror(errno)))")
        }
        let address: SocketAddress
        do {
            address = try SocketAddress(ipAddress: host, port: Int(port))
        } catch {
            throw HealthCheckListenError(host: host, port: port, reason: "not an IP address")
        }
        let isV6 = address.protocol == .inet6
        let socket = Glibc.socket(isV6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw failure("socket") }
        var one: CInt = 1
        if setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size)) != 0
            || (isV6 && setsockopt(socket, CInt(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<CInt>.size)) != 0) {
            let error = failure("setsockopt")
            close(socket)
            throw error
        }
        let bound = address.withSockAddr { pointer, length in bind(socket, pointer, socklen_t(length)) }
        guard bound == 0 else {
            let error = failure("bind")
            close(socket)
            throw error
        }
        return socket
    }

    /// The servers of one health-check port.
    private struct Servers: HealthCheckListener {
        let servers: [HTTPEndpointServer]
        func close() async { for server in servers { await server.close() } }
    }
}
