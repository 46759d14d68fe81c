/// Parameters of a list request.
public struct ListQuery: Sendable, Equatable {
    /// `labelSelector`, e.g. `!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name`.
    public var labelSelector: String?
    /// `fieldSelector`, e.g. `metadata.name=node-1`.
    public var fieldSelector: String?
    /// `limit`: the page size; nil asks for everything at once.
    public var limit: Int?
    /// `continue`: the token of the previous page.
    public var continueToken: String?
    /// `resourceVersion`: nil for a consistent read of the newest state.
    public var resourceVersion: String?

    /// Creates list parameters; all are optional.
    public init(labelSelector: String? = nil, fieldSelector: String? = nil, limit: Int? = nil,
                continueToken: String? = nil, resourceVersion: String? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.limit = limit
        self.continueToken = continueToken
        self.resourceVersion = resourceVersion
    }

    var queryItems: [(String, String)] {
        var items: [(String, String)] = []
        if let labelSelector, !labelSelector.isEmpty { items.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { items.append(("fieldSelector", fieldSelector)) }
        if let limit { items.append(("limit", String(limit))) }
        if let continueToken { items.append(("continue", continueToken)) }
        if let resourceVersion { items.append(("resourceVersion", resourceVersion)) }
        return items
    }
}

/// Parameters of a watch request.
public struct WatchQuery: Sendable, Equatable {
    /// `labelSelector`, as for the list.
    public var labelSelector: String?
    /// `fieldSelector`, as for the list.
    public var fieldSelector: String?
    /// `resourceVersion` to watch from: the list's, then the last event's or bookmark's.
    public var resourceVersion: String
    /// `timeoutSeconds`: the server ends the watch after this long.
    public var timeoutSeconds: Int?
    /// `allowWatchBookmarks`.
    public var allowWatchBookmarks: Bool

    /// Creates watch parameters.
    public init(labelSelector: String? = nil, fieldSelector: String? = nil, resourceVersion: String,
                timeoutSeconds: Int? = nil, allowWatchBookmarks: Bool = true) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.resourceVersion = resourceVersion
        self.timeoutSeconds = timeoutSeconds
        self.allowWatchBookmarks = allowWatchBookmarks
    }

    var queryItems: [(String, String)] {
        var items: [(String, String)] = [("watch", "true")]
        if let labelSelector, !labelSelector.isEmpty { items.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { items.append(("fieldSelector", fieldSelector)) }
        items.append(("resourceVersion", resourceVersion))
        if let timeoutSeconds { items.append(("timeoutSeconds", String(timeoutSeconds))) }
        if allowWatchBookmarks { items.append(("allowWatchBookmarks", "true")) }
        return items
    }
}

/// Percent-encodes a query: only unreserved characters stay as they are.
func encodeQuery(_ items: [(String, String)]) -> String {
    func escape(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return result
    }
    return items.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
}
