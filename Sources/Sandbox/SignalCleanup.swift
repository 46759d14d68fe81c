import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Topologies that exist and are not destroyed yet (weakly held), for signal cleanup.
final class LiveTopologies: @unchecked Sendable {
    static let shared = LiveTopologies()

    private struct Weak { weak var topology: Topology? }
    private let lock = NSLock()
    private var entries: [ObjectIdentifier: Weak] = [:]

    func add(_ t: Topology) {
        lock.lock(); defer { lock.unlock() }
        entries[ObjectIdentifier(t)] = Weak(topology: t)
    }

    func remove(_ t: Topology) {
        lock.lock(); defer { lock.unlock() }
        entries[ObjectIdentifier(t)] = nil
    }

    func all() -> [Topology] {
        lock.lock(); defer { lock.unlock() }
        return entries.values.compactMap(\.topology)
    }
}

/// Process-wide state of signal cleanup.
///
/// Once a handled signal arrives, one thread (the cleanup thread) destroys every live
/// topology and then ends the process with the signal. Meanwhile other threads must not
/// end the process first (an error thrown because a namespace just vanished would
/// otherwise reach `exit()` or a top-level trap while namespaces are half deleted), so
/// every other thread that enters the Sandbox library, or calls `exit()`, is parked.
final class Termination: @unchecked Sendable {
    static let shared = Termination()

    private let lock = NSLock()
    private var terminating = false
    private var cleanupThread: pthread_t?
    private var sources: [Int32: DispatchSourceSignal] = [:]
    private var exitHookInstalled = false
    let queue = DispatchQueue(label: "sandbox.signal-cleanup")

    /// Marks the calling thread as the cleanup thread. Returns false if a cleanup is
    /// already running.
    func begin() -> Bool {
        lock.lock(); defer { lock.unlock() }
        if terminating { return false }
        terminating = true
        cleanupThread = pthread_self()
        return true
    }

    /// If a signal cleanup runs on another thread, never returns (the process is about to
    /// end with the signal).
    func parkIfTerminating() {
        lock.lock()
        let park = terminating && !(cleanupThread.map { pthread_equal($0, pthread_self()) != 0 } ?? false)
        lock.unlock()
        if park {
            while true { sleep(3600) }
        }
    }

    func install(_ signals: [Int32], onSignal: (@Sendable (Int32) -> Void)?) {
        lock.lock()
        defer { lock.unlock() }
        if !exitHookInstalled {
            exitHookInstalled = true
            atexit { Termination.shared.parkIfTerminating() }
        }
        for sig in signals where sources[sig] == nil {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            let all = signals
            source.setEventHandler {
                guard Termination.shared.begin() else { return }
                // A second Ctrl-C (or SIGTERM) while cleaning up ends the process at once.
                for s in all { signal(s, SIG_DFL) }
                onSignal?(sig)
                for topology in LiveTopologies.shared.all() {
                    topology.destroy()
                }
                var set = sigset_t()
                sigemptyset(&set)
                sigaddset(&set, sig)
                pthread_sigmask(SIG_UNBLOCK, &set, nil)
                raise(sig)
                // Not reached for terminating signals; be sure anyway.
                _exit(128 + sig)
            }
            source.resume()
            sources[sig] = source
        }
    }
}

extension Topology {
    /// On SIGINT, SIGTERM or SIGHUP (by default): destroy every live topology of this
    /// process (including one still being created), then end the process with that
    /// signal's default action, so the exit status still says "killed by SIGINT".
    /// `onSignal` runs first, on the cleanup thread, e.g. to print "cleaning up".
    ///
    /// While the cleanup runs, other threads that call into this library, or call
    /// `exit()`, wait for it (the process then ends with the signal), so a failure caused
    /// by the vanishing namespaces cannot end the process half-way through the cleanup.
    /// A second signal during the cleanup ends the process immediately.
    ///
    /// Call once, early, from a command-line program such as the demo (a second call only
    /// adds signals not handled yet). The signals are set to SIG_IGN so that dispatch
    /// sources receive them; children started later inherit that unless they reset it
    /// (`nftproxy-echo` does; `destroy()` falls back to SIGKILL anyway).
    public static func installSignalCleanup(signals: [Int32] = [SIGINT, SIGTERM, SIGHUP],
                                            onSignal: (@Sendable (Int32) -> Void)? = nil) {
        Termination.shared.install(signals, onSignal: onSignal)
    }
}
