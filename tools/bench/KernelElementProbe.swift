#if canImport(Glibc)
import Glibc
#endif
import Netlink
import ServiceModel

/// Asks the kernel for one element of one of nftproxy's maps (`NFT_MSG_GETSETELEM` with its
/// key, no dump), as `nft get element` does: the direct measurement of when a change is in
/// the kernel.
struct KernelElementProbe {
    let socket: NetlinkSocket

    init(networkNamespace: String) throws {
        socket = try NetlinkSocket(namespace: NetworkNamespace(named: networkNamespace))
    }

    /// The data of the element `clusterIP . tcp . port . slot` of `service-backends-<buckets>`
    /// in `ip nftproxy` (the endpoint behind numgen slot `slot`), as `address . port`; nil
    /// when there is no such element (or map).
    func backend(clusterIP: IPAddress, port: UInt16, slot: UInt32, buckets: Int) throws -> (IPAddress, UInt16)? {
        var key = clusterIP.bytes
        key += [6, 0, 0, 0]  // meta l4proto tcp, padded to 4 bytes
        key += [UInt8(port >> 8), UInt8(port & 0xff), 0, 0]  // th dport, network order, padded
        key += withUnsafeBytes(of: slot.littleEndian) { Array($0) }  // numgen: host order
        let query = NftSet(family: NetfilterFamily.ipv4, table: "nftproxy", name: "service-backends-\(buckets)",
                           elements: [NftSetElement(key: key)])
        var data: [UInt8]?
        do {
            try socket.request(type: NftMessage.getElements, family: NetfilterFamily.ipv4,
                               build: { (message) throws(NetlinkError) in try message.putElements(query) }) { message in
                let reply = try NftSet(parsingElements: message)
                data = reply.elements.first?.data
            }
        } catch {
            if case .rejected(_, let code, _) = error, code == ENOENT { return nil }
            throw error
        }
        guard let data, data.count >= 6, let address = IPAddress(bytes: Array(data[0..<4])) else { return nil }
        return (address, UInt16(data[4]) << 8 | UInt16(data[5]))
    }
}
