extension TableReadBack {
    /// A table read back whole (every rule and set understood): what an engine knows it
    /// committed, or what an in-memory kernel holds.
    public init(table: Table) {
        self.init(table: table, untrustedChains: [], unreadableSets: [])
    }
}
