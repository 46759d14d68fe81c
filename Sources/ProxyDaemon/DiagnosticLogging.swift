import Logging
import ServiceModel

extension Diagnostic {
    /// The parts of the diagnostic as log metadata: `code`, and those of `kind`, `apiVersion`,
    /// `namespace`, `name`, `source`, `document`, `field`, `frontend` and `related` it has.
    public var logMetadata: Logger.Metadata {
        var metadata: Logger.Metadata = ["code": "\(code.rawValue)", "kind": "\(object.kind)"]
        let optional: [(String, String?)] = [
            ("apiVersion", object.apiVersion), ("namespace", object.namespace), ("name", object.name),
            ("source", object.source), ("document", object.document), ("field", field),
            ("frontend", frontend?.description), ("related", related?.description),
        ]
        for case let (key, value?) in optional { metadata[key] = "\(value)" }
        return metadata
    }

    /// The log level of its severity: warning, or notice.
    public var logLevel: Logger.Level {
        switch severity {
        case .warning: return .warning
        case .notice: return .notice
        }
    }
}

extension Logger {
    /// Logs `diagnostic`'s message with its parts as metadata, at `level` or that of its severity.
    public func log(_ diagnostic: Diagnostic, level: Logger.Level? = nil) {
        log(level: level ?? diagnostic.logLevel, "\(diagnostic.message)", metadata: diagnostic.logMetadata)
    }
}
