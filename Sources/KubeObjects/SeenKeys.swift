/// The keys met so far in one object, to refuse duplicates: a short array for the few keys of
/// ordinary objects, a hash set once there are many (so that an object with 100,000 keys does
/// not cost 100,000² comparisons).
struct SeenKeys {
    private var few: [String] = []
    private var many: Set<String>?

    /// Adds `key`; false if it was there already.
    mutating func insert(_ key: String) -> Bool {
        if many != nil { return many?.insert(key).inserted ?? false }
        if few.contains(key) { return false }
        few.append(key)
        if few.count > 16 {
            many = Set(few)
            few = []
        }
        return true
    }
}
