#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Monotonic time and CPU time, straight from the kernel.
enum Clock {
    /// CLOCK_MONOTONIC, in seconds.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// User and system CPU time of one thread, of the process, or of its reaped children.
struct CPUTimes: Codable, Sendable {
    var user: Double
    var system: Double

    enum Who {
        case thread, process, children
        var value: Int32 {
            switch self {
            case .process: return RUSAGE_SELF.rawValue
            case .children: return RUSAGE_CHILDREN.rawValue
            case .thread: return 1  // RUSAGE_THREAD
            }
        }
    }

    static func of(_ who: Who) -> CPUTimes {
        var usage = rusage()
        getrusage(__rusage_who_t(who.value), &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return CPUTimes(user: seconds(usage.ru_utime), system: seconds(usage.ru_stime))
    }

    static func - (lhs: CPUTimes, rhs: CPUTimes) -> CPUTimes {
        CPUTimes(user: lhs.user - rhs.user, system: lhs.system - rhs.system)
    }
}

/// One timed piece of work: wall time on the monotonic clock, and the calling thread's
/// CPU time split into user (our code: planning, encoding) and system (the kernel).
struct Timing: Codable, Sendable {
    var seconds: Double
    var cpu: CPUTimes

    static func measure<T>(_ body: () throws -> T) rethrows -> (T, Timing) {
        let cpuBefore = CPUTimes.of(.thread)
        let start = Clock.now()
        let result = try body()
        let seconds = Clock.now() - start
        return (result, Timing(seconds: seconds, cpu: CPUTimes.of(.thread) - cpuBefore))
    }
}

/// Memory of this process, from getrusage and /proc/self/status.
struct MemorySample: Codable, Sendable {
    /// getrusage(RUSAGE_SELF).ru_maxrss, KiB.
    var maxRSSKiB: Int
    /// VmHWM (peak resident set), KiB.
    var peakKiB: Int
    /// VmRSS (current resident set), KiB.
    var currentKiB: Int

    static func now() -> MemorySample {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        var peak = 0, current = 0
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in status.split(separator: "\n") {
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard parts.count >= 2, let value = Int(parts[1]) else { continue }
                if parts[0] == "VmHWM:" { peak = value }
                if parts[0] == "VmRSS:" { current = value }
            }
        }
        return MemorySample(maxRSSKiB: Int(usage.ru_maxrss), peakKiB: peak, currentKiB: current)
    }
}

/// Order statistics of a sample.
struct Summary: Codable, Sendable {
    var count: Int
    var median: Double
    var p95: Double
    var min: Double
    var max: Double

    init(_ values: [Double]) {
        let sorted = values.sorted()
        count = sorted.count
        func quantile(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            // Nearest rank.
            let rank = Int((q * Double(sorted.count)).rounded(.up))
            return sorted[Swift.max(0, Swift.min(sorted.count - 1, rank - 1))]
        }
        median = sorted.isEmpty ? .nan
            : sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        p95 = quantile(0.95)
        min = sorted.first ?? .nan
        max = sorted.last ?? .nan
    }
}
