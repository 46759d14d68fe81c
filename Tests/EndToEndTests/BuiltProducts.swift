import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Finds executables built by SwiftPM alongside the test bundle.
enum BuiltProducts {
    struct NotFound: Error, CustomStringConvertible {
        let name: String
        let searched: [String]
        var description: String {
            "built product '\(name)' not found; looked in:\n  " + searched.joined(separator: "\n  ")
                + "\nBuild it first, e.g. `swift build --product \(name)` (with the same --scratch-path as the tests),"
                + " or set NFTPROXY_BIN_DIR to the directory that holds it."
        }
    }

    /// Directories that may hold the package's built executables, best first:
    /// $NFTPROXY_BIN_DIR, the directory of the running test bundle (SwiftPM puts
    /// executables next to `<package>PackageTests.xctest`), then `.build*/debug` and
    /// `.build*/release` of the package this file belongs to.
    static func candidateDirectories(filePath: String = #filePath) -> [String] {
        var dirs: [String] = []
        if let env = ProcessInfo.processInfo.environment["NFTPROXY_BIN_DIR"], !env.isEmpty { dirs.append(env) }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        for path in [CommandLine.arguments.first, executable, Bundle.main.executablePath, Bundle.main.bundlePath]
            .compactMap({ $0 }) where !path.isEmpty {
            var url = URL(fileURLWithPath: path).resolvingSymlinksInPath()
            // Walk up out of an .xctest bundle directory (macOS layout) to the products directory.
            while url.path.contains(".xctest") { url.deleteLastPathComponent() }
            if url.pathExtension.isEmpty, (try? url.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true {
                dirs.append(url.path)
            } else {
                dirs.append(url.deletingLastPathComponent().path)
            }
        }
        // <package>/Tests/EndToEndTests/BuiltProducts.swift -> <package>
        let package = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let buildDirs = ((try? FileManager.default.contentsOfDirectory(atPath: package.path)) ?? [])
            .filter { $0.hasPrefix(".build") }.sorted()
        for build in buildDirs {
            for config in ["debug", "release"] {
                dirs.append(package.appendingPathComponent(build).appendingPathComponent(config).path)
            }
        }
        var seen = Set<String>()
        return dirs.filter { seen.insert($0).inserted }
    }

    /// Absolute path of the built executable `name`, or a clear error.
    static func path(of name: String) throws -> String {
        let dirs = candidateDirectories()
        for dir in dirs {
            let candidate = dir + "/" + name
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDir), !isDir.boolValue,
               access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        throw NotFound(name: name, searched: dirs)
    }
}

/// Skips the test unless it runs as root (network namespaces need CAP_SYS_ADMIN and
/// CAP_NET_ADMIN) and `ip` is available.
func requireRoot() throws {
    if getuid() != 0 {
        throw XCTSkip("requires root: the end-to-end tests create network namespaces")
    }
    if access("/usr/sbin/ip", X_OK) != 0 && access("/sbin/ip", X_OK) != 0 && access("/usr/bin/ip", X_OK) != 0
        && access("/bin/ip", X_OK) != 0 {
        throw XCTSkip("requires the `ip` command (iproute2)")
    }
}
