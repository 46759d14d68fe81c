import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Finds the package's built executables (`nftproxy`, `nftproxy-echo`) at run time.
///
/// Tests run the real binaries, and `nftproxy demo` starts `nftproxy-echo` in its pods,
/// so both need the path of a sibling product. SwiftPM puts every executable of a build
/// (and the test bundle) in one products directory, e.g. `.build/debug` or
/// `.build-e2e/release`; the search starts there.
public enum BuiltProducts {
    /// No candidate directory holds an executable of that name.
    public struct NotFound: Error, CustomStringConvertible, Sendable {
        /// The product asked for.
        public let name: String
        /// Every directory searched, in order.
        public let searched: [String]

        public var description: String {
            "built product '\(name)' not found; looked in:\n  " + searched.joined(separator: "\n  ")
                + "\nBuild it first, e.g. `swift build --product \(name)` (with the same --scratch-path and"
                + " configuration as the program that needs it), or set NFTPROXY_BIN_DIR to the directory that holds it."
        }
    }

    /// Directories that may hold the built executables, best first, without duplicates:
    ///
    /// 1. `$NFTPROXY_BIN_DIR` (and, for older scripts, `$NFTPROXY_BUILD_DIR`) when set;
    /// 2. the directory of the running executable (`/proc/self/exe`, resolved): the
    ///    products directory of the build that made it, so `nftproxy` finds the
    ///    `nftproxy-echo` built with it, and a test bundle finds the products of its build;
    /// 3. the directories of `argv[0]` and of the main bundle;
    /// 4. `.build*/debug` and `.build*/release` of the package this library was compiled
    ///    from (a fallback for development trees; absent on other machines).
    public static func candidateDirectories() -> [String] {
        var dirs: [String] = []
        let environment = ProcessInfo.processInfo.environment
        for variable in ["NFTPROXY_BIN_DIR", "NFTPROXY_BUILD_DIR"] {
            if let dir = environment[variable], !dir.isEmpty { dirs.append(dir) }
        }
        let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        for path in [executable, CommandLine.arguments.first, Bundle.main.executablePath, Bundle.main.bundlePath]
            .compactMap({ $0 }) where !path.isEmpty {
            var url = URL(fileURLWithPath: path).resolvingSymlinksInPath()
            // Walk out of an .xctest bundle directory (the macOS layout) to the products directory.
            while url.path.contains(".xctest") && url.path != "/" { url.deleteLastPathComponent() }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
                dirs.append(url.path)
            } else {
                dirs.append(url.deletingLastPathComponent().path)
            }
        }
        // <package>/Sources/Sandbox/BuiltProducts.swift -> <package>
        let package = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let buildDirs = ((try? FileManager.default.contentsOfDirectory(atPath: package.path)) ?? [])
            .filter { $0.hasPrefix(".build") }.sorted()
        for build in buildDirs {
            for configuration in ["debug", "release"] {
                dirs.append(package.appendingPathComponent(build).appendingPathComponent(configuration).path)
            }
        }
        var seen = Set<String>()
        return dirs.filter { seen.insert($0).inserted }
    }

    /// Absolute path of the built executable `name` (e.g. `"nftproxy-echo"`): the first
    /// regular, executable file of that name in `candidateDirectories()`.
    ///
    /// - Throws: `NotFound`, listing the directories searched and how to build the product.
    public static func path(of name: String) throws -> String {
        let dirs = candidateDirectories()
        for dir in dirs {
            let candidate = dir + "/" + name
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
               access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        throw NotFound(name: name, searched: dirs)
    }
}
