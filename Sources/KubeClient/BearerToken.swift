import Foundation
import NIOConcurrencyHelpers

/// The bearer token of a connection. A fixed token is returned as is; a token file is read
/// again for every request (it is a few hundred bytes, and requests are lists and watches,
/// not a stream of calls), so a rotated projected token is used by the next request. If the
/// file cannot be read for a moment (the kubelet swaps it by a symlink), the last token read
/// is used.
final class BearerToken: Sendable {
    private let fixed: String?
    private let file: String?
    private let lastRead = NIOLockedValueBox<String?>(nil)

    init(_ credentials: Credentials) {
        fixed = credentials.token
        file = credentials.tokenFile
    }

    /// The token to send now, or nil when the connection uses no token.
    func current() throws(KubeClientError) -> String? {
        if let fixed { return fixed }
        guard let file else { return nil }
        if let data = FileManager.default.contents(atPath: file),
           let text = String(data: data, encoding: .utf8) {
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty {
                lastRead.withLockedValue { $0 = token }
                return token
            }
        }
        if let previous = lastRead.withLockedValue({ $0 }) { return previous }
        throw KubeClientError.configuration("token file \(file) cannot be read or is empty")
    }
}
