import Glibc
import KubeObjects
import ServiceModel

/// libFuzzer entry point: one input is the text of one file given to `nftproxy dump -f`.
///
/// Decoding either succeeds (then the ServiceMap is built too) or throws an InputError; a
/// trap, a hang or unbounded memory is a finding, and so is a broken invariant:
/// - a refusal names its source, and a refusal that names an object or field names the
///   document too;
/// - every address of an accepted map prints as text that parses back to the same address;
/// - a short input is an address to ``IPAddress`` exactly when glibc's `inet_pton` says so.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { UnsafeBufferPointer(start: $0, count: size) } ?? UnsafeBufferPointer(start: nil, count: 0)
    let text = String(decoding: bytes, as: UTF8.self)
    if size <= 64 && !bytes.contains(0) { compareWithInetPton(text) }
    var decoder = KubeObjectDecoder()
    do {
        try decoder.add(contents: text, source: "fuzz.yaml")
        let (map, _) = try decoder.serviceMap()
        checkRoundTrip(map)
    } catch {
        guard error.description.hasPrefix("fuzz.yaml: ") else {
            fatalError("refusal without its source: \(error.description)")
        }
        if error.object != nil || error.field != nil, error.document == nil {
            fatalError("refusal of an object without its document: \(error.description)")
        }
    }
    return 0
}

private func checkRoundTrip(_ map: ServiceMap) {
    for service in map.services {
        var addresses = service.clusterIPs + service.externalIPs + service.loadBalancerIPs
        addresses += service.ports.flatMap { $0.endpoints.map(\.address) }
        for address in addresses where IPAddress(address.description) != address {
            fatalError("\(address) does not parse back to itself")
        }
    }
}

private func compareWithInetPton(_ text: String) {
    var v4 = in_addr(), v6 = in6_addr()
    let theirs: [UInt8]? = if inet_pton(AF_INET, text, &v4) == 1 {
        withUnsafeBytes(of: &v4) { Array($0) }
    } else if inet_pton(AF_INET6, text, &v6) == 1 {
        withUnsafeBytes(of: &v6) { Array($0) }
    } else {
        nil
    }
    let ours = IPAddress(text)?.bytes
    if ours != theirs {
        fatalError("IPAddress(\(text.debugDescription)) = \(String(describing: ours)), inet_pton = \(String(describing: theirs))")
    }
}
