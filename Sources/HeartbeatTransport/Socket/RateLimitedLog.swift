import Logging

/// Warnings about dropped datagrams, at most one line per kind and `interval`: a flood of
/// garbage costs a line now and then, with the count of what was dropped in between.
final class RateLimitedLog: @unchecked Sendable {
    private let logger: Logger
    private let interval: Duration
    private let lock = Lock()
    private var entries: [String: (lastLogged: ContinuousClock.Instant, suppressed: Int)] = [:]

    init(logger: Logger, interval: Duration) {
        self.logger = logger
        self.interval = interval
    }

    /// Logs `message` unless a line of the same `kind` was logged within the interval.
    func warning(kind: String, _ message: @autoclosure () -> String) {
        let now = ContinuousClock.now
        let suppressed: Int? = lock.locked {
            if let entry = entries[kind], now - entry.lastLogged < interval {
                entries[kind] = (entry.lastLogged, entry.suppressed + 1)
                return nil
            }
            let count = entries[kind]?.suppressed ?? 0
            entries[kind] = (now, 0)
            return count
        }
        guard let suppressed else { return }
        let more = suppressed > 0 ? " (and \(suppressed) more like it since the last such line)" : ""
        logger.warning("\(message())\(more)")
    }
}
