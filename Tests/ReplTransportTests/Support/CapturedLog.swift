import Logging
@testable import ReplTransport

/// A logger whose lines the test can read back.
final class CapturedLog: @unchecked Sendable {
    private let monitor = Monitor()
    private var lines: [(level: Logger.Level, text: String)] = []

    var logger: Logger {
        var logger = Logger(label: "test") { _ in Handler(log: self) }
        logger.logLevel = .debug
        return logger
    }

    /// The lines logged at `level` so far.
    func lines(at level: Logger.Level) -> [String] {
        monitor.locked { lines.filter { $0.level == level }.map(\.text) }
    }

    /// Waits up to 5 s for `count` lines at `level`; returns them.
    func waitForLines(_ count: Int, at level: Logger.Level) -> [String] {
        let deadline = ContinuousClock.now + .seconds(5)
        while lines(at: level).count < count, ContinuousClock.now < deadline { Pause.sleep(for: .milliseconds(5)) }
        return lines(at: level)
    }

    private func append(_ level: Logger.Level, _ text: String) {
        monitor.locked { lines.append((level, text)) }
    }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug

        func log(event: LogEvent) { log.append(event.level, event.message.description) }

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
    }
}
