import Foundation
import NIOCore

/// JSON bodies the stand-in answers with, written as the API server writes them.
enum Responses {
    /// A `Status` failure body.
    static func status(code: Int, reason: String, message: String, details: [String: Any]? = nil) -> [UInt8] {
        var object: [String: Any] = [
            "kind": "Status", "apiVersion": "v1", "metadata": [String: Any](), "status": "Failure",
            "message": message, "reason": reason, "code": code,
        ]
        if let details { object["details"] = details }
        return json(object)
    }

    /// A list: `{"kind":..., "apiVersion":..., "metadata":{...}, "items":[...]}` with the
    /// items' stored bytes spliced in as they are.
    static func list(_ result: ListResult, resource: ServedResource) -> ByteBuffer {
        var metadata = "{\"resourceVersion\":\"\(result.resourceVersion)\""
        if let token = result.continueToken { metadata += ",\"continue\":\"\(token)\"" }
        if let remaining = result.remainingItemCount { metadata += ",\"remainingItemCount\":\(remaining)" }
        metadata += "}"
        var buffer = ByteBuffer()
        buffer.reserveCapacity(result.items.reduce(256) { $0 + $1.itemByteCount + 1 })
        buffer.writeString("{\"kind\":\"\(resource.kind)List\",\"apiVersion\":\"\(resource.apiVersion)\",\"metadata\":\(metadata),\"items\":[")
        for (index, item) in result.items.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            item.writeItem(into: &buffer)
        }
        buffer.writeString("]}\n")
        return buffer
    }

    /// One watch event line: `{"type":"ADDED","object":{...}}` and a newline.
    static func watchEvent(type: String, object: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(object.count + 40)
        buffer.writeString("{\"type\":\"\(type)\",\"object\":")
        buffer.writeBytes(object)
        buffer.writeString("}\n")
        return buffer
    }

    /// The object of a BOOKMARK event: only kind, apiVersion and the resourceVersion.
    static func bookmarkObject(resource: ServedResource, resourceVersion: Int) -> [UInt8] {
        Array("{\"kind\":\"\(resource.kind)\",\"apiVersion\":\"\(resource.apiVersion)\",\"metadata\":{\"resourceVersion\":\"\(resourceVersion)\",\"creationTimestamp\":null}}".utf8)
    }

    static func json(_ object: Any) -> [UInt8] {
        [UInt8]((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8))
    }
}
