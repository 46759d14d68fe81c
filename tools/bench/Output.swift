import Foundation

/// Writes a line to stderr (summaries, progress).
func printErr(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Writes text to stdout at once (FileHandle, unbuffered): scripts come out in pieces.
func writeOut(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

/// Pretty-printed JSON with sorted keys; NaN (an empty sample's median) as "nan".
func jsonText<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
}

/// Human-readable numbers for summaries and tables.
enum Format {
    /// "0.42 ms", "12.3 ms", "345 ms", "1.23 s", "–" for NaN.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "–" }
        let ms = seconds * 1000
        if ms < 10 { return String(format: "%.2f ms", ms) }
        if ms < 100 { return String(format: "%.1f ms", ms) }
        if ms < 1000 { return String(format: "%.0f ms", ms) }
        return String(format: "%.2f s", seconds)
    }

    /// "512 KiB", "10.7 MiB"; "–" when unknown.
    static func bytes(_ bytes: Int?) -> String {
        guard let bytes else { return "–" }
        if bytes < 1 << 20 { return "\(bytes / 1024) KiB" }
        return String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
    }

    /// An integer with thousands separators: 220,000.
    static func count(_ value: Double) -> String {
        guard value.isFinite else { return "–" }
        return count(Int(value.rounded()))
    }

    static func count(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (value < 0 ? "-" : "") + out
    }
}
