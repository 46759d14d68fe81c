import Foundation

/// The Kubernetes objects the demo programs: `examples/echo-server.yaml` of the nftproxy
/// checkout, read from that one file (nothing is embedded), or a file given with `--objects`.
struct ExampleObjects {
    /// The objects' file could not be found or read.
    struct NotFound: Error, CustomStringConvertible {
        /// Every path tried, in order.
        let tried: [String]
        /// Why the last one failed, when it exists but cannot be read.
        let reason: String?

        var description: String {
            "cannot read the demo's objects (\(reason ?? "no such file")); tried:\n  " + tried.joined(separator: "\n  ")
                + "\nRun the demo from the nftproxy checkout, or give the file with --objects FILE."
        }
    }

    /// Where the objects came from, as shown to the user.
    let path: String
    /// The file's text.
    let text: String

    /// The example's path inside a checkout.
    static let examplePath = "examples/echo-server.yaml"

    /// Reads `path`, or else the first `examples/echo-server.yaml` found in the current
    /// directory, above the directory of this executable (a build directory inside a
    /// checkout, such as `.build/release`), or in the checkout this program was built from.
    static func load(path: String?) throws(NotFound) -> ExampleObjects {
        let candidates = path.map { [$0] } ?? defaultCandidates()
        for candidate in candidates where FileManager.default.fileExists(atPath: candidate) {
            do {
                return ExampleObjects(path: candidate, text: try String(contentsOfFile: candidate, encoding: .utf8))
            } catch {
                throw NotFound(tried: candidates, reason: "\(candidate): \(error.localizedDescription)")
            }
        }
        throw NotFound(tried: candidates, reason: nil)
    }

    /// The places a checkout's example can be, best first, without duplicates.
    static func defaultCandidates() -> [String] {
        var roots = [FileManager.default.currentDirectoryPath]
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
            for _ in 0..<4 where directory.path != "/" {
                directory.deleteLastPathComponent()
                roots.append(directory.path)
            }
        }
        // <checkout>/Sources/nftproxy-demo/ExampleObjects.swift -> <checkout>
        roots.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().path)
        var seen = Set<String>()
        return roots.map { URL(fileURLWithPath: $0).appendingPathComponent(examplePath).standardizedFileURL.path }
            .filter { seen.insert($0).inserted }
    }

    /// The path of another executable installed next to this one, or its bare name.
    static func sibling(_ name: String) -> String {
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return name }
        let path = URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent(name).path
        return FileManager.default.isExecutableFile(atPath: path) ? path : name
    }
}
