import CNetfilter

#if canImport(Glibc)
import Glibc
#endif

/// Looking set elements up by key: `NFT_MSG_GETSETELEM` requests without `NLM_F_DUMP`.
///
/// A dump of a set's elements costs more than linear time in the kernel: every reply
/// datagram (at most 32 KiB) walks the set's hash table from its start again, skipping
/// what earlier datagrams carried, so dumping N elements visits about N² / (2 × elements
/// per datagram) of them. A lookup request instead names its elements: the kernel finds
/// each by its key and answers it with a message of its own (data, flags, expressions such
/// as a counter with what it counted, as a dump would), in the order they were named, then
/// ACKs the request. It stops at the first key the set does not hold and answers the
/// request with `ENOENT`; the keys after it are then asked again in a new request.
///
/// Each reply is queued on the socket before the next is made (the kernel answers
/// inside the `sendmsg` of the request), so requests go out in rounds sized to the
/// receive buffer, which is raised first: every queued reply costs about 1 KiB of it
/// (``receiveBufferBytesPerAcknowledgement``), not its 100 or so bytes.
extension NetlinkSocket {
    /// The most element bytes (nested attributes) one lookup request carries: a nest's
    /// length is 16 bits, and a request must also fit ``NetlinkRequestList/maximumMessageSize``.
    static let lookupElementBytesPerRequest = 60 * 1024

    /// The most keys looked up per round (one datagram of requests, then all their replies).
    public static let lookupKeysPerRound = 4096

    /// Looks up `keys` (each the key bytes as the set holds them) in set `set` of table
    /// `table`, and calls `found` with the index of each key the set holds and its element.
    ///
    /// - Returns: the indices of the keys the set does not hold, in ascending order.
    /// - Throws: ``NetlinkError/rejected(operation:errno:kernelMessage:)`` when the kernel
    ///   refuses a request for another reason than a missing key (no such table or set,
    ///   a key of the wrong length: `EINVAL`), ``NetlinkError/malformed(_:)`` when a reply
    ///   cannot be parsed or does not answer the key asked, ``NetlinkError/bufferOverrun``,
    ///   transport errors, and what `found` throws (wrapped in ``NetlinkError/handler(_:)``
    ///   unless it is a ``NetlinkError``).
    public func lookUpElements(
        family: UInt8, table: String, set: String, keys: [[UInt8]],
        found: (Int, NftSetElement) throws -> Void
    ) throws(NetlinkError) -> [Int] {
        guard !keys.isEmpty else { return [] }
        let keysPerRound = Self.lookupKeysPerRound
        let receiveSpace = keysPerRound * Self.receiveBufferBytesPerAcknowledgement * 2 + Self.receiveChunkSize
        let space = try reserveBufferSpace(send: Self.minimumSocketBufferSize, receive: receiveSpace)
        // With less room than asked (no CAP_NET_ADMIN), smaller rounds.
        let roundLimit = max(1, min(keysPerRound,
                                    (space.receive - Self.receiveChunkSize) / (2 * Self.receiveBufferBytesPerAcknowledgement)))
        var missing: [Int] = []
        // Ranges of key indices still to ask for; a request that stops at a missing key
        // leaves the rest of its range here.
        var pending: [Range<Int>] = [0..<keys.count]
        let operation = RequestName.describe(subsystem: .nftables, type: NftMessage.getElements, family: family, dump: false)
        do {
            try drain()
            while !pending.isEmpty {
                var round: [Range<Int>] = []
                var budget = roundLimit
                while budget > 0, let next = pending.popLast() {
                    let take = min(next.count, budget)
                    round.append(next.lowerBound..<(next.lowerBound + take))
                    if take < next.count { pending.append((next.lowerBound + take)..<next.upperBound) }
                    budget -= take
                }
                let leftOver = try lookUpRound(family: family, table: table, set: set, keys: keys, round,
                                               operation: operation, missing: &missing, found: found)
                pending.append(contentsOf: leftOver)
            }
        } catch {
            _ = try? drain()
            throw error
        }
        return missing.sorted()
    }

    /// One request asked in a round: the keys it names, and what has come back for it.
    private struct LookupRequest {
        let sequence: UInt32
        let keys: Range<Int>
        var answered = 0
        var finished = false
    }

    /// Sends requests for the key ranges of `round` in one datagram and reads every reply;
    /// returns the key ranges that requests stopped short of (after a missing key).
    private func lookUpRound(
        family: UInt8, table: String, set: String, keys: [[UInt8]], _ round: [Range<Int>],
        operation: String, missing: inout [Int], found: (Int, NftSetElement) throws -> Void
    ) throws(NetlinkError) -> [Range<Int>] {
        var requests: [LookupRequest] = []
        let datagram = MessageBuffer(capacity: 2 * NetlinkRequestList.maximumMessageSize)
        for range in round {
            var start = range.lowerBound
            while start < range.upperBound {
                var end = start
                var bytes = 0
                while end < range.upperBound {
                    // LIST_ELEM { KEY { VALUE } }: three attribute headers and the key.
                    let length = 3 * NetlinkFormat.attributeHeaderLength + NetlinkFormat.align(keys[end].count)
                    if bytes + length > Self.lookupElementBytesPerRequest, end > start { break }
                    bytes += length
                    end += 1
                }
                let sequence = reserveSequenceNumbers()
                _ = datagram.appendMessage(
                    type: NetlinkFormat.messageType(subsystem: .nftables, message: NftMessage.getElements),
                    flags: UInt16(NLM_F_REQUEST | NLM_F_ACK), sequence: sequence, family: family,
                    maximumSize: NetlinkRequestList.maximumMessageSize, describe: { operation },
                    build: { (header) -> Void in
                        let writer = NetlinkMessageWriter(header)
                        writer.put(UInt16(NFTA_SET_ELEM_LIST_TABLE.rawValue), string: table)
                        writer.put(UInt16(NFTA_SET_ELEM_LIST_SET.rawValue), string: set)
                        writer.nest(UInt16(NFTA_SET_ELEM_LIST_ELEMENTS.rawValue)) { elements in
                            for index in start..<end {
                                elements.nest(UInt16(NFTA_LIST_ELEM.rawValue)) { element in
                                    element.nest(UInt16(NFTA_SET_ELEM_KEY.rawValue)) { key in
                                        key.put(UInt16(NFTA_DATA_VALUE.rawValue), bytes: keys[index])
                                    }
                                }
                            }
                        }
                    })
                requests.append(LookupRequest(sequence: sequence, keys: start..<end))
                elementLookupRequests += 1
                start = end
            }
        }
        try send([datagram.bytes])

        var leftOver: [Range<Int>] = []
        var open = requests.count
        var failure: NetlinkError?
        try receiveReplies(until: { open == 0 }) { (header, message) throws(NetlinkError) in
            guard header.portID == portID || header.portID == 0, let first = requests.first,
                  header.sequence &- first.sequence < UInt32(requests.count) else { return }
            let position = Int(header.sequence &- first.sequence)
            guard !requests[position].finished else { return }
            let request = requests[position]
            let index = request.keys.lowerBound + request.answered
            if header.isError {
                let reply = try Acknowledgement(header: header, message: message)
                requests[position].finished = true
                open -= 1
                if reply.errno == ENOENT, index < request.keys.upperBound {
                    missing.append(index)
                    if index + 1 < request.keys.upperBound { leftOver.append((index + 1)..<request.keys.upperBound) }
                } else if reply.errno != 0, failure == nil {
                    failure = .rejected(operation: operation, errno: reply.errno, kernelMessage: reply.kernelMessage)
                }
                return
            }
            guard !header.isControl, failure == nil else { return }
            guard index < request.keys.upperBound else {
                failure = .malformed("\(operation): more replies than keys asked")
                return
            }
            var replied = 0
            let view = NetlinkMessageView(bytes: message)
            func check(_ element: NftSetElement) throws {
                guard element.key == keys[index] else {
                    throw NetlinkError.malformed("\(operation): a reply names another key than the one asked")
                }
                replied += 1
                try found(index, element)
            }
            do {
                if let element = NftSetElement.lookupReply(view) {
                    try check(element)
                } else {
                    try NftSet.forEachElement(parsing: view, check)
                }
            } catch let error as NetlinkError {
                failure = error
            } catch {
                failure = .handler(error)
            }
            if replied != 1, failure == nil { failure = .malformed("\(operation): a reply holds \(replied) elements") }
            requests[position].answered += 1
        }
        if let failure { throw failure }
        return leftOver
    }
}
