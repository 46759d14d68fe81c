import Netlink

/// A connection to nf_tables in one network namespace: commits transactions.
public final class NftablesClient {
    public let socket: NetlinkSocket

    /// Opens a netlink socket in the current network namespace, or in the named one.
    public init(networkNamespace: String? = nil) throws(NetlinkError) {
        if let networkNamespace {
            socket = try NetlinkSocket(namespace: try NetworkNamespace(named: networkNamespace))
        } else {
            socket = try NetlinkSocket()
        }
    }

    /// Encodes the transaction into one netlink batch and commits it. The kernel applies
    /// all of it or, if any operation fails, none of it; the error names that operation.
    ///
    /// - Parameter generationID: when given, the kernel refuses the batch if the ruleset
    ///   changed since that generation (`NetlinkError.generationChanged`).
    public func commit(_ transaction: Transaction, generationID: UInt32? = nil) throws(NetlinkError) {
        guard !transaction.isEmpty else { return }
        try socket.commit(try Self.batch(for: transaction, generationID: generationID))
    }

    /// The netlink batch that commits `transaction`.
    ///
    /// - Throws: ``NetlinkError/allocationFailed(object:)`` when libnftnl runs out of memory.
    static func batch(for transaction: Transaction, generationID: UInt32?) throws(NetlinkError) -> NetlinkBatch {
        let encoder = MessageEncoder(transaction: transaction)
        var batch = NetlinkBatch(generationID: generationID)
        for operation in transaction.operations {
            let header = encoder.header(for: operation)
            try batch.append(operation.summary, type: header.type, family: header.family, flags: header.flags) {
                (message) throws(NetlinkError) in
                try encoder.encode(operation, into: message)
            }
        }
        return batch
    }
}
