import ServiceModel

/// Why a valid Service or EndpointSlice is not served: the code and field of the notice, and
/// the reason as the notice words it (`type ExternalName`).
struct SkipReason: Sendable {
    var code: Diagnostic.Code
    /// Path of the field that decides it, inside the object.
    var field: String?
    var text: String

    init(_ code: Diagnostic.Code, field: String?, _ text: String) {
        self.code = code
        self.field = field
        self.text = text
    }
}

/// The path of the label `key`, as errors name it: `metadata.labels["kubernetes.io/service-name"]`.
func labelPath(_ key: String) -> String {
    "metadata.labels[\(quoted(key))]"
}
