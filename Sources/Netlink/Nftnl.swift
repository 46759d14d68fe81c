import CNetfilter

// Owned libnftnl objects: each wrapper allocates its object in a throwing initializer
// and frees it in `deinit`, unless a container took it over (an expression added to a
// rule, set or element). Set elements have no wrapper: a set takes each one over as
// soon as it is allocated (`NftSetElement.add(to:)`). Only the wire layer sees them.

/// An `nftnl_table`.
final class NftnlTable {
    let object: OpaquePointer
    init() throws(NetlinkError) {
        guard let object = nftnl_table_alloc() else { throw .allocationFailed(object: "nftnl_table") }
        self.object = object
    }
    deinit { nftnl_table_free(object) }
}

/// An `nftnl_chain`.
final class NftnlChain {
    let object: OpaquePointer
    init() throws(NetlinkError) {
        guard let object = nftnl_chain_alloc() else { throw .allocationFailed(object: "nftnl_chain") }
        self.object = object
    }
    deinit { nftnl_chain_free(object) }
}

/// An `nftnl_rule`.
final class NftnlRule {
    let object: OpaquePointer
    init() throws(NetlinkError) {
        guard let object = nftnl_rule_alloc() else { throw .allocationFailed(object: "nftnl_rule") }
        self.object = object
    }
    deinit { nftnl_rule_free(object) }

    /// Adds `expression`; the rule frees it from now on.
    func add(_ expression: NftnlExpression) {
        nftnl_rule_add_expr(object, expression.release())
    }
}

/// An `nftnl_set`.
final class NftnlSet {
    let object: OpaquePointer
    init() throws(NetlinkError) {
        guard let object = nftnl_set_alloc() else { throw .allocationFailed(object: "nftnl_set") }
        self.object = object
    }
    deinit { nftnl_set_free(object) }

    /// Adds a set-level expression (the template of per-element expressions); the set frees it.
    func add(_ expression: NftnlExpression) {
        nftnl_set_add_expr(object, expression.release())
    }
}

/// An `nftnl_expr` of one kind, owned until a rule, set or element takes it.
final class NftnlExpression {
    let object: OpaquePointer
    private var owned = true
    init(_ name: String) throws(NetlinkError) {
        guard let object = nftnl_expr_alloc(name) else { throw .allocationFailed(object: "nftnl_expr \(name)") }
        self.object = object
    }
    deinit { if owned { nftnl_expr_free(object) } }

    /// Gives up ownership to a container.
    func release() -> OpaquePointer {
        precondition(owned, "nftnl_expr handed to two containers")
        owned = false
        return object
    }

    func set(_ attribute: Int, u8 value: UInt8) { nftnl_expr_set_u8(object, UInt16(attribute), value) }
    func set(_ attribute: Int, u32 value: UInt32) { nftnl_expr_set_u32(object, UInt16(attribute), value) }
    func set(_ attribute: Int, u64 value: UInt64) { nftnl_expr_set_u64(object, UInt16(attribute), value) }
    func set(_ attribute: Int, string: String) { nftnl_expr_set_str(object, UInt16(attribute), string) }
    func set(_ attribute: Int, bytes: [UInt8]) {
        bytes.withUnsafeBytes { _ = nftnl_expr_set(object, UInt16(attribute), $0.baseAddress, UInt32($0.count)) }
    }
}

/// Read access to a borrowed `nftnl_expr` (one a parsed rule, set or element owns).
struct NftnlExpressionReader {
    let object: OpaquePointer

    func has(_ attribute: Int) -> Bool { nftnl_expr_is_set(object, UInt16(attribute)) }
    func u8(_ attribute: Int) -> UInt8 { nftnl_expr_get_u8(object, UInt16(attribute)) }
    func u32(_ attribute: Int) -> UInt32 { nftnl_expr_get_u32(object, UInt16(attribute)) }
    func u64(_ attribute: Int) -> UInt64 { nftnl_expr_get_u64(object, UInt16(attribute)) }
    func optionalU32(_ attribute: Int) -> UInt32? { has(attribute) ? u32(attribute) : nil }
    func optionalU64(_ attribute: Int) -> UInt64? { has(attribute) ? u64(attribute) : nil }
    func string(_ attribute: Int) -> String? {
        guard has(attribute), let pointer = nftnl_expr_get_str(object, UInt16(attribute)) else { return nil }
        return String(cString: pointer)
    }
    func bytes(_ attribute: Int) -> [UInt8] {
        var length: UInt32 = 0
        guard has(attribute), let pointer = nftnl_expr_get(object, UInt16(attribute), &length) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: Int(length)))
    }
}
