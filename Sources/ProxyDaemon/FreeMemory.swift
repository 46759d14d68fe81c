#if canImport(Glibc)
import Glibc
#endif

/// Gives the memory the allocator holds but no longer uses back to the kernel.
///
/// A start decodes every list page, assembles every service and compiles the whole ruleset:
/// hundreds of megabytes at 10,000 services, most of it freed once the first sync is
/// committed. glibc's malloc keeps freed memory in its arenas (one per thread that
/// allocated), so without this the resident set stays near the start's peak.
/// `malloc_trim(0)` releases the unused pages of every arena.
enum FreeMemory {
    /// glibc's `malloc_trim`, looked up at run time (Swift's Glibc module does not export
    /// malloc.h); nil with another C library.
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(nil, "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()

    /// Releases the allocator's free pages; returns whether any memory was released.
    @discardableResult
    static func releaseUnusedPages() -> Bool {
        guard let mallocTrim else { return false }
        return mallocTrim(0) != 0
    }
}
