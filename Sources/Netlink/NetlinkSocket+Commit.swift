import CNetfilter

#if canImport(Glibc)
import Glibc
#endif

extension NetlinkSocket {
    /// How long ``commit(_:)`` waits for ACKs still missing once the socket is empty.
    ///
    /// The kernel processes a batch inside the `sendmsg` call and queues every reply
    /// before that call returns, so this only matters if that ever stops being true.
    static let acknowledgementGraceMilliseconds: Int32 = 1000

    /// Sends `batch` to the kernel as one nf_tables transaction and waits for its outcome.
    ///
    /// The socket's buffers are first raised to fit the batch (send) and one ACK per
    /// operation (receive). The batch goes out in one `sendmsg`, framed by batch begin
    /// and end messages, so the kernel applies it atomically. Every ACK is then read
    /// and matched to its operation by sequence number, and the socket is left empty.
    /// An empty batch sends nothing.
    ///
    /// Each queued ACK costs about 830 bytes of receive buffer. If the buffer cannot be
    /// raised far enough (without `CAP_NET_ADMIN` it stops at `net.core.rmem_max`), the
    /// batch is sent without `NLM_F_ACK`, as `nft` does: the kernel then reports only
    /// errors, and silence after the send means the transaction was applied.
    ///
    /// - Throws:
    ///   - ``NetlinkError/rejected(operation:errno:kernelMessage:)`` for the first
    ///     operation the kernel refused (or, naming the whole commit, when the commit
    ///     itself failed). The kernel aborted the transaction: nothing was applied.
    ///   - ``NetlinkError/generationChanged`` when the batch's generation ID is stale.
    ///     Nothing was applied.
    ///   - ``NetlinkError/bufferOverrun`` when replies were lost to a full receive buffer
    ///     and none of those read reports an error: the outcome is unknown.
    ///   - ``NetlinkError/batchTooLarge(bytes:sendBufferLimit:)`` when the send buffer
    ///     cannot hold the batch. Nothing was sent.
    ///   - ``NetlinkError/send(errno:)``, ``NetlinkError/receive(errno:)``,
    ///     ``NetlinkError/malformed(_:)`` for transport failures.
    public func commit(_ batch: NetlinkBatch) throws(NetlinkError) {
        try commit(batch, acknowledgingEach: nil)
    }

    /// ``commit(_:)``, with the choice between one ACK per operation and errors only
    /// forced by `acknowledgingEach` (nil: decided by the receive buffer's size).
    func commit(_ batch: NetlinkBatch, acknowledgingEach: Bool?) throws(NetlinkError) {
        guard !batch.isEmpty else { return }
        try drain()

        let bytes = batch.byteCount
        // The kernel refuses datagrams larger than the send buffer less 32 bytes.
        let sendOverhead = 32
        let acknowledgementSpace =
            batch.operationCount * Self.receiveBufferBytesPerAcknowledgement + Self.receiveChunkSize
        let space = raisesBuffersForCommit
            ? try reserveBufferSpace(
                send: max(bytes + sendOverhead, Self.minimumSocketBufferSize),
                receive: max(acknowledgementSpace, Self.minimumSocketBufferSize))
            : (send: try sendBufferSize, receive: try receiveBufferSize)
        guard bytes <= space.send - sendOverhead else {
            throw .batchTooLarge(bytes: bytes, sendBufferLimit: space.send - sendOverhead)
        }
        let acknowledged = acknowledgingEach ?? (space.receive >= acknowledgementSpace)

        let begin = batch.beginMessage()
        let end = batch.endMessage()
        if acknowledged {
            try withExtendedLifetime((begin, end)) { () throws(NetlinkError) in
                try batch.withMessageBytes { (operations) throws(NetlinkError) in
                    try send([begin.bytes, operations, end.bytes])
                }
            }
        } else {
            let operations = batch.messagesWithoutAcknowledgementRequests()
            try withExtendedLifetime((begin, operations, end)) { () throws(NetlinkError) in
                try send([begin.bytes, operations.bytes, end.bytes])
            }
        }

        var outcome = BatchOutcome(batch: batch, acknowledged: acknowledged)
        do {
            try collectReplies(into: &outcome)
        } catch {
            // Leave nothing behind for the next exchange, then report the failure.
            _ = try? drain()
            throw error
        }
        try outcome.check()
    }

    /// Reads replies until the socket is empty, recording each ACK or error in `outcome`.
    private func collectReplies(into outcome: inout BatchOutcome) throws(NetlinkError) {
        var waited = false
        while true {
            switch try receiveDatagram(into: receiveBuffer, wait: false) {
            case .overrun:
                outcome.overrun = true
            case .foreign:
                continue
            case .wouldBlock:
                if outcome.awaitsMore, !waited {
                    waited = true
                    if try waitForData(milliseconds: Self.acknowledgementGraceMilliseconds) { continue }
                }
                return
            case let .datagram(length):
                let datagram = UnsafeRawBufferPointer(rebasing: receiveBuffer[..<length])
                try forEachMessage(in: datagram) { (header, message) throws(NetlinkError) in
                    // Echoed objects (NLM_F_ECHO) and anything not addressed to us are skipped.
                    guard header.isError, header.portID == portID || header.portID == 0 else { return }
                    outcome.record(try Acknowledgement(header: header, message: message))
                }
            }
        }
    }
}

/// What the kernel said about one committed batch, reply by reply.
struct BatchOutcome {
    /// The batch, for sequence numbers and operation names.
    let batch: NetlinkBatch

    /// Whether every operation asked for an ACK (otherwise only errors are answered).
    let acknowledged: Bool

    /// Which operations have been acknowledged (successfully or not).
    private var answered: [Bool]

    /// How many distinct operations have been acknowledged.
    private(set) var answeredCount = 0

    /// The refused operation with the lowest index, and the kernel's reply.
    private(set) var firstRefusal: (index: Int, reply: Acknowledgement)?

    /// An error reported for the batch as a whole (against its begin or end message):
    /// a stale generation ID, a failed commit, or an out-of-memory abort.
    private(set) var batchFailure: Acknowledgement?

    /// Whether replies were lost to a full receive buffer.
    var overrun = false

    init(batch: NetlinkBatch, acknowledged: Bool) {
        self.batch = batch
        self.acknowledged = acknowledged
        self.answered = Array(repeating: false, count: batch.operationCount)
    }

    /// Records one `NLMSG_ERROR` reply. Replies whose sequence number is not one of the
    /// batch's (stale replies to something else) are ignored.
    mutating func record(_ reply: Acknowledgement) {
        if let index = batch.operationIndex(ofSequence: reply.sequence) {
            if !answered[index] {
                answered[index] = true
                answeredCount += 1
            }
            if reply.errno != 0, firstRefusal.map({ index < $0.index }) ?? true {
                firstRefusal = (index, reply)
            }
        } else if reply.sequence == batch.firstSequence || reply.sequence == batch.endSequence {
            if reply.errno != 0, batchFailure == nil { batchFailure = reply }
        }
    }

    /// Whether more replies are expected: ACKs were requested, no operation was
    /// refused, the batch did not fail as a whole, nothing was lost, and some
    /// operations are still unanswered.
    var awaitsMore: Bool {
        acknowledged && answeredCount < batch.operationCount && firstRefusal == nil && batchFailure == nil
            && !overrun
    }

    /// Throws the error that describes the outcome, or returns if the transaction was applied.
    func check() throws(NetlinkError) {
        if let batchFailure, batchFailure.errno == ERESTART {
            throw .generationChanged
        }
        if let (index, reply) = firstRefusal {
            throw .rejected(operation: batch.operations[index], errno: reply.errno, kernelMessage: reply.kernelMessage)
        }
        if let batchFailure {
            throw .rejected(
                operation: "commit of \(batch.operationCount) operations",
                errno: batchFailure.errno,
                kernelMessage: batchFailure.kernelMessage)
        }
        if overrun {
            throw .bufferOverrun
        }
        if acknowledged, answeredCount < batch.operationCount {
            throw .malformed(
                "the kernel acknowledged \(answeredCount) of \(batch.operationCount) operations "
                    + "and reported no error; the outcome of the transaction is unknown")
        }
    }
}
