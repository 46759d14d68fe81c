#if canImport(Glibc)
import Glibc
#endif

/// Everything that can go wrong while talking to the kernel over netfilter netlink.
///
/// Errors carry the raw `errno` value; their ``description`` renders it with
/// `strerror`, so messages read like the kernel's own (`No such file or directory`).
public enum NetlinkError: Error, CustomStringConvertible {
    /// Opening or configuring the netlink socket failed; `call` names the failing call
    /// (for example `mnl_socket_bind` or `setsockopt(NETLINK_EXT_ACK)`).
    case socket(errno: Int32, call: String)

    /// `sendmsg` to the kernel failed.
    case send(errno: Int32)

    /// `recvmsg` from the kernel failed.
    case receive(errno: Int32)

    /// The kernel refused `operation` (the name given to ``NetlinkBatch/append(_:type:family:flags:build:)``,
    /// or a description of a dump or request) with `errno`; `kernelMessage` is the extended-ACK
    /// text (`NLMSGERR_ATTR_MSG`) when the kernel supplied one.
    ///
    /// For a batch the kernel aborts the whole transaction: nothing of it was applied.
    case rejected(operation: String, errno: Int32, kernelMessage: String?)

    /// The batch carried a ruleset generation ID and the ruleset changed since it was
    /// read (the kernel answered `ERESTART`). Nothing was applied: read the ruleset
    /// again, rebuild the batch and retry.
    case generationChanged

    /// The socket's receive buffer overflowed (`ENOBUFS`) and kernel replies were lost.
    ///
    /// After ``NetlinkSocket/commit(_:)`` the outcome of the transaction is then
    /// unknown: the caller must read the ruleset back before deciding what to do.
    case bufferOverrun

    /// A batch of `bytes` bytes does not fit the socket's send buffer (`sendBufferLimit`
    /// bytes even after trying to raise it); raising it past `net.core.wmem_max` needs
    /// `CAP_NET_ADMIN` (`SO_SNDBUFFORCE`). Nothing was sent.
    case batchTooLarge(bytes: Int, sendBufferLimit: Int)

    /// Entering or opening the network namespace `name` (a name under `/run/netns`,
    /// or a path) failed.
    case namespace(name: String, errno: Int32)

    /// A dump kept changing while it was read (`NLM_F_DUMP_INTR`) in each of `attempts` tries.
    case dumpInterrupted(operation: String, attempts: Int)

    /// The kernel's reply could not be understood, or was incomplete.
    case malformed(String)

    /// The caller's handler for dumped or replied messages threw `error`.
    case handler(any Error)

    /// libnftnl could not allocate `object` (out of memory, or an expression kind the
    /// installed libnftnl does not know).
    case allocationFailed(object: String)

    /// A human readable explanation, using `strerror` text for `errno` values.
    public var description: String {
        switch self {
        case let .socket(errno, call):
            return "netlink socket: \(call) failed: \(errorText(errno))"
        case let .send(errno):
            return "netlink send failed: \(errorText(errno))"
        case let .receive(errno):
            return "netlink receive failed: \(errorText(errno))"
        case let .rejected(operation, errno, kernelMessage):
            var text = "kernel refused \"\(operation)\": \(errorText(errno))"
            if let kernelMessage, !kernelMessage.isEmpty {
                text += " (\(kernelMessage))"
            }
            return text
        case .generationChanged:
            return "the nftables ruleset changed since its generation ID was read; the kernel refused the batch "
                + "(ERESTART) and applied none of it: read the ruleset again and retry"
        case .bufferOverrun:
            return "netlink receive buffer overrun (ENOBUFS): kernel replies were lost, so the outcome is unknown; "
                + "read the ruleset back before retrying"
        case let .batchTooLarge(bytes, limit):
            return "netlink batch of \(bytes) bytes does not fit the socket send buffer of \(limit) bytes "
                + "(SO_SNDBUFFORCE needs CAP_NET_ADMIN; otherwise raise net.core.wmem_max)"
        case let .namespace(name, errno):
            return "network namespace \"\(name)\": \(errorText(errno))"
        case let .dumpInterrupted(operation, attempts):
            return "\"\(operation)\" was interrupted by concurrent ruleset changes (NLM_F_DUMP_INTR) in all \(attempts) attempts"
        case let .malformed(detail):
            return "malformed netlink reply: \(detail)"
        case let .handler(error):
            return "netlink message handler failed: \(error)"
        case let .allocationFailed(object):
            return "libnftnl could not allocate \(object)"
        }
    }
}

/// `strerror` text for an `errno` value.
func errorText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "error \(code)" }
    return String(cString: text)
}
