/// Capped, jittered exponential backoff for reconnects, as client-go's reflector uses it:
/// each delay is the current base times (1 + jitter × a random fraction), never above `maximum`;
/// the base doubles after each failure until it reaches `maximum`, and `reset()` (after a
/// success) returns it to `initial`.
public struct Backoff: Sendable, Equatable {
    /// The first base delay.
    public var initial: Duration
    /// No delay is longer than this.
    public var maximum: Duration
    /// Growth of the base per failure.
    public var factor: Double
    /// The random part: a delay lies in [base, base × (1 + jitter)], then capped.
    public var jitter: Double
    private var base: Duration

    /// Creates a backoff; client-go's defaults are 800 ms, 30 s, 2 and 1.0.
    public init(initial: Duration = .milliseconds(800), maximum: Duration = .seconds(30),
                factor: Double = 2, jitter: Double = 1) {
        self.initial = initial
        self.maximum = maximum
        self.factor = max(1, factor)
        self.jitter = max(0, jitter)
        self.base = initial
    }

    /// The delay before the next attempt, using the system's random numbers.
    public mutating func next() -> Duration {
        var generator = SystemRandomNumberGenerator()
        return next(using: &generator)
    }

    /// The delay before the next attempt, using `generator` for the jitter.
    public mutating func next<G: RandomNumberGenerator>(using generator: inout G) -> Duration {
        let fraction = Double.random(in: 0..<1, using: &generator)
        let delay = min(maximum, base * (1 + jitter * fraction))
        base = min(maximum, base * factor)
        return delay
    }

    /// Starts again from `initial` (call after a success).
    public mutating func reset() {
        base = initial
    }
}
