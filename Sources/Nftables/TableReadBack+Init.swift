extension TableReadBack {
    /// A table as some kernel holds it: what an engine knows it committed (every rule and set
    /// understood), or what an in-memory kernel reads back.
    public init(_ table: Table, untrustedChains: Set<String> = [], unreadableSets: Set<String> = []) {
        self.init(table: table, untrustedChains: untrustedChains, unreadableSets: unreadableSets)
    }
}
