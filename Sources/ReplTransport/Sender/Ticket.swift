/// A sent message's claim on its acknowledgement: pass it to ``ReplicationSender/wait(for:timeout:)``.
public struct Ticket: Hashable, Sendable {
    /// The frame's sequence number on the stream; 0 if the message was never sent (connection
    /// already lost).
    public let sequence: UInt64
    /// When the frame was handed to the socket; the acknowledgement timeout counts from here.
    let sentAt: ContinuousClock.Instant

    /// The ticket of a message that could not be sent: waiting on it reports ``DeliveryOutcome/peerLost``.
    static func unsent() -> Ticket { Ticket(sequence: 0, sentAt: .now) }
}

/// What became of a sent message.
public enum DeliveryOutcome: Hashable, Sendable {
    /// The peer applied it (for `fsync`: and made it durable).
    case applied
    /// The peer could not apply it and answered with this errno; the stream goes on.
    case failed(errno: Int32)
    /// The connection broke, or no acknowledgement came in time: the caller goes on without the peer.
    case peerLost
}
