import ServiceModel

/// The typed parts of a ``ServiceModel/Diagnostic`` without its message, so that tests compare
/// what was found, about which object and field, rather than the wording.
public struct Finding: Equatable, CustomStringConvertible {
    public var severity: Diagnostic.Severity
    public var code: Diagnostic.Code
    public var object: DiagnosticObject
    public var field: String?
    public var related: DiagnosticObject?
    public var frontend: FrontendKey?

    public init(_ severity: Diagnostic.Severity, _ code: Diagnostic.Code, _ object: DiagnosticObject, field: String? = nil,
                related: DiagnosticObject? = nil, frontend: FrontendKey? = nil) {
        self.severity = severity
        self.code = code
        self.object = object
        self.field = field
        self.related = related
        self.frontend = frontend
    }

    /// The parts of `diagnostic`.
    public init(_ diagnostic: Diagnostic) {
        self.init(diagnostic.severity, diagnostic.code, diagnostic.object, field: diagnostic.field,
                  related: diagnostic.related, frontend: diagnostic.frontend)
    }

    public var description: String {
        "\(severity) \(code.rawValue) \(object)" + [object.source, object.document, field].compactMap { $0.map { " \($0)" } }.joined()
            + (related.map { " related: \($0)" } ?? "") + (frontend.map { " frontend: \($0)" } ?? "")
    }
}

extension Array where Element == Diagnostic {
    /// The typed parts of each, in order.
    public var findings: [Finding] { map(Finding.init) }
}

extension Finding {
    /// A frontend conflict: `loser` claims `frontend` with the port field `field`, `owner` keeps it.
    public static func conflict(_ frontend: FrontendKey, loser: ServiceName, owner: ServiceName, field: String) -> Finding {
        Finding(.warning, .frontendConflict, .service(loser), field: field, related: .service(owner), frontend: frontend)
    }
}
