#if canImport(Glibc)
import Glibc
#endif

/// A Linux network namespace, named by a namespace file.
///
/// `ip netns add NAME` creates the file `/run/netns/NAME`; ``init(named:)`` refers to
/// such a namespace, ``init(path:)`` to any namespace file (for example
/// `/proc/PID/ns/net`).
///
/// ``run(_:)`` executes a closure with the *calling thread* switched into the namespace
/// (`setns(2)` with `CLONE_NEWNET` affects only the calling thread) and switches back
/// afterwards. Sockets opened inside stay bound to the namespace for their whole life,
/// which is how ``NetlinkSocket/init(namespace:)`` programs a namespace other than the
/// process's own.
public struct NetworkNamespace: Sendable, Hashable, CustomStringConvertible {
    /// The directory where `ip netns` keeps its namespace files.
    public static let namedNamespaceDirectory = "/run/netns"

    /// The namespace file.
    public let path: String

    /// The name errors report: the `ip netns` name, or the path.
    public let name: String

    /// The namespace `ip netns add name` created, `/run/netns/<name>`.
    ///
    /// - Throws: ``NetlinkError/namespace(name:errno:)`` with `EINVAL` when `name` is
    ///   empty, `.`, `..`, or contains a `/`.
    public init(named name: String) throws(NetlinkError) {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\0") else {
            throw .namespace(name: name, errno: EINVAL)
        }
        self.name = name
        self.path = "\(Self.namedNamespaceDirectory)/\(name)"
    }

    /// The namespace that the file at `path` refers to.
    public init(path: String) {
        self.name = path
        self.path = path
    }

    /// The network namespace file of the calling thread.
    static let currentThreadPath = "/proc/thread-self/ns/net"

    public var description: String { name }

    /// Runs `body` on the calling thread while that thread is inside this namespace,
    /// then moves the thread back to the namespace it was in.
    ///
    /// `body` must be synchronous and must not hand work to other threads expecting
    /// them to be in the namespace: only the calling thread is switched. Sockets it
    /// opens keep working in this namespace after `run` returns.
    ///
    /// If the thread cannot be moved back, the process is stopped with a fatal error:
    /// carrying on would leave the thread (and whatever later runs on it) in the wrong
    /// namespace, where it could program the wrong ruleset.
    ///
    /// - Throws: ``NetlinkError/namespace(name:errno:)`` when the namespace cannot be
    ///   opened or entered (nothing ran), or whatever `body` throws.
    public func run<Result>(_ body: () throws(NetlinkError) -> Result) throws(NetlinkError) -> Result {
        let original: Int32
        do {
            original = try SystemCall.openReadOnly(Self.currentThreadPath)
        } catch {
            throw .namespace(name: Self.currentThreadPath, errno: error.errno)
        }
        defer { SystemCall.close(original) }

        let target: Int32
        do {
            target = try SystemCall.openReadOnly(path)
        } catch {
            throw .namespace(name: name, errno: error.errno)
        }
        defer { SystemCall.close(target) }

        do {
            try SystemCall.enterNetworkNamespace(target)
        } catch {
            throw .namespace(name: name, errno: error.errno)
        }
        defer {
            do {
                try SystemCall.enterNetworkNamespace(original)
            } catch {
                fatalError("cannot return thread from network namespace \"\(name)\": \(errorText(error.errno))")
            }
        }
        return try body()
    }
}
