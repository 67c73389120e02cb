import ReplProtocol

/// What the peer has acknowledged so far, shared by the threads that send, wait and read acks.
///
/// Acknowledgements are cumulative: `ack(n)` covers every frame up to `n`. A `nack(n, errno)`
/// arrives before the `ack` that covers `n`, so the failure is recorded before the frame counts
/// as acknowledged, and the waiter of `n` sees the failure.
final class AcknowledgementTracker {
    private let monitor = Monitor()
    private var lastSent: UInt64 = 0
    private var acknowledgedThrough: UInt64 = 0
    /// Errnos of nacked frames whose waiter has not collected them yet.
    private var failures: [UInt64: Int32] = [:]
    /// Answers to requests whose waiter has not collected them yet.
    private var replies: [UInt64: Message] = [:]
    private var lossReason: String?

    /// Why the connection was lost, once it was.
    var loss: String? { monitor.locked { lossReason } }

    func recordSent(_ sequence: UInt64) {
        monitor.locked { lastSent = sequence }
    }

    /// Records `ack(sequence)`; throws if it acknowledges a frame never sent.
    func acknowledge(through sequence: UInt64) throws {
        try monitor.locked {
            guard sequence <= lastSent else { throw AcknowledgementError(sequence: sequence, lastSent: lastSent) }
            acknowledgedThrough = max(acknowledgedThrough, sequence)
            monitor.broadcast()
        }
    }

    /// Records `nack(sequence, errno)`; throws if it names a frame never sent.
    func fail(_ sequence: UInt64, errno: Int32) throws {
        try monitor.locked {
            guard sequence <= lastSent else { throw AcknowledgementError(sequence: sequence, lastSent: lastSent) }
            failures[sequence] = errno
            monitor.broadcast()
        }
    }

    /// Records the peer's answer to request `sequence`; throws if it names a frame never sent.
    func reply(to sequence: UInt64, with message: Message) throws {
        try monitor.locked {
            guard sequence <= lastSent else { throw AcknowledgementError(sequence: sequence, lastSent: lastSent) }
            replies[sequence] = message
            monitor.broadcast()
        }
    }

    /// Takes the answer recorded for request `sequence`, if one came.
    func takeReply(to sequence: UInt64) -> Message? {
        monitor.locked { replies.removeValue(forKey: sequence) }
    }

    /// Marks the connection lost and wakes every waiter. Returns `false` if it already was.
    func markLost(_ reason: String) -> Bool {
        monitor.locked {
            guard lossReason == nil else { return false }
            lossReason = reason
            monitor.broadcast()
            return true
        }
    }

    /// Waits until frame `sequence` is acknowledged, failed or lost; `nil` if `deadline` came first.
    func outcome(of sequence: UInt64, until deadline: ContinuousClock.Instant) -> DeliveryOutcome? {
        monitor.locked {
            while true {
                if let code = failures.removeValue(forKey: sequence) { return .failed(errno: code) }
                if sequence != 0, sequence <= acknowledgedThrough { return .applied }
                if lossReason != nil { return .peerLost }
                if !monitor.wait(until: deadline) { return nil }
            }
        }
    }

    /// Sleeps until `deadline`, or less if the connection is lost meanwhile; returns whether it is.
    func waitForLoss(until deadline: ContinuousClock.Instant) -> Bool {
        monitor.locked {
            while lossReason == nil, monitor.wait(until: deadline) {}
            return lossReason != nil
        }
    }
}

/// The peer acknowledged a frame that was never sent: it is not speaking our stream.
struct AcknowledgementError: Error, CustomStringConvertible {
    let sequence: UInt64
    let lastSent: UInt64

    var description: String { "acknowledgement of frame \(sequence), but only \(lastSent) frames were sent" }
}
