import ReplProtocol
@testable import ReplTransport

/// A secondary running ``ReplicationReceiver/run(apply:)`` on its own thread, recording what it applied.
final class ReceivingPeer: @unchecked Sendable {
    let receiver: ReplicationReceiver
    let log = CapturedLog()
    private let monitor = Monitor()
    private var appliedOperations: [(sequence: UInt64, message: Message)] = []
    private var end: Result<Void, Error>?

    init(channel: ReplicationChannel, settings: ReplicationReceiver.Settings = .init(),
         apply: @escaping (UInt64, Message) -> ReplicationReceiver.ApplyResult = { _, _ in .applied }) {
        receiver = ReplicationReceiver(channel: channel, settings: settings, logger: log.logger)
        BackgroundThread.start { [self] in
            let result = Result { try receiver.run { sequence, message in
                let result = apply(sequence, message)
                monitor.locked { appliedOperations.append((sequence, message)) }
                return result
            } }
            monitor.locked {
                end = result
                monitor.broadcast()
            }
        }
    }

    var applied: [(sequence: UInt64, message: Message)] { monitor.locked { appliedOperations } }

    /// How `run` ended, waiting up to 5 s for it; `nil` if it is still running.
    func waitForEnd() -> Result<Void, Error>? {
        monitor.locked {
            let deadline = ContinuousClock.now + .seconds(5)
            while end == nil, monitor.wait(until: deadline) {}
            return end
        }
    }
}

/// A closed gate that blocks threads until opened.
final class Gate: @unchecked Sendable {
    private let monitor = Monitor()
    private var isOpen = false

    func open() { monitor.locked { isOpen = true; monitor.broadcast() } }

    func pass() { monitor.locked { while !isOpen { _ = monitor.wait(until: nil) } } }
}

/// Runs `body(index)` on `count` threads at once and returns when all have finished.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let monitor = Monitor()
    var running = count
    for index in 0..<count {
        BackgroundThread.start {
            body(index)
            monitor.locked { running -= 1; monitor.broadcast() }
        }
    }
    monitor.locked { while running > 0 { _ = monitor.wait(until: nil) } }
}
