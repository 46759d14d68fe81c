import Foundation

/// Finds executables built by SwiftPM next to the test bundle.
enum BuiltProduct {
    enum Failure: Error, CustomStringConvertible {
        case notFound(String, [String])
        var description: String {
            switch self {
            case .notFound(let name, let places):
                return "\(name) is not built (looked in \(places.joined(separator: ", "))); run `swift build` first"
            }
        }
    }

    static func path(of name: String) throws -> String {
        var places: [String] = []
        if let directory = ProcessInfo.processInfo.environment["NFTPROXY_BUILD_DIR"] { places.append(directory) }
        let bundle = URL(fileURLWithPath: CommandLine.arguments.first { $0.hasSuffix(".xctest") } ?? CommandLine.arguments[0])
        places.append(bundle.deletingLastPathComponent().path)
        places.append(Bundle.main.bundleURL.deletingLastPathComponent().path)
        for place in places {
            let candidate = URL(fileURLWithPath: place).appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw Failure.notFound(name, places)
    }
}
