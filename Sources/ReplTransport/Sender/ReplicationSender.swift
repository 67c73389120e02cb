import Logging
import ReplProtocol

/// The primary's end of a replication channel: many threads send operations on one ordered
/// stream, and each learns when the peer has applied its own.
///
/// ## Overview
/// - ``send(_:)`` and ``sendWrite(module:node:offset:data:)`` encode the message and write its
///   frame to the socket under one lock, so sequence numbers follow stream order and frames of
///   different threads never interleave. They return at once with a ``Ticket``: many messages
///   are in flight together (pipelining).
/// - ``wait(for:timeout:)`` blocks the calling thread until the peer's cumulative `ack` covers
///   the ticket (``DeliveryOutcome/applied``), its `nack` names it (``DeliveryOutcome/failed(errno:)``),
///   or the connection is lost (``DeliveryOutcome/peerLost``).
/// - A background thread reads the peer's acks, nacks and pongs. Another sends a `ping` every
///   ``Settings/pingInterval``, so a silent peer is noticed even when nobody waits.
/// - The connection is lost when the socket breaks, the peer sends anything invalid, or any frame
///   (a waited-for message or a ping) stays unacknowledged for ``Settings/acknowledgementTimeout``.
///   Loss is final and logged once: every waiter gets ``DeliveryOutcome/peerLost``, later sends
///   do nothing. Going on alone is the caller's decision; a new connection needs a new sender.
///
/// Call ``close()`` when done: the background threads keep the sender alive until the
/// connection ends.
public final class ReplicationSender {
    /// Timing of acknowledgements and liveness checks.
    public struct Settings: Sendable {
        /// A frame not acknowledged within this delay after it was sent means the peer is lost.
        public var acknowledgementTimeout: Duration
        /// How often a `ping` tests the peer's liveness.
        public var pingInterval: Duration

        public init(acknowledgementTimeout: Duration = .seconds(3), pingInterval: Duration = .seconds(1)) {
            self.acknowledgementTimeout = acknowledgementTimeout
            self.pingInterval = pingInterval
        }
    }

    /// "node 'node2' at 127.0.0.2:7788", for log lines.
    public let peerDescription: String
    /// The timing this sender runs with.
    public let settings: Settings

    private let socket: Socket
    private let logger: Logger
    private let tracker = AcknowledgementTracker()
    /// Held while a frame is encoded and written: the encoder's sequence numbers are stream order.
    private let sendLock = Monitor()
    private var encoder: FrameEncoder

    /// Takes over `channel` and starts the threads that read acknowledgements and send pings.
    public init(channel: ReplicationChannel, settings: Settings = Settings(), logger: Logger) {
        peerDescription = channel.peerDescription
        self.settings = settings
        socket = channel.socket
        self.logger = logger
        encoder = FrameEncoder(sendingKey: channel.keys.sending)
        let decoder = channel.decoder
        BackgroundThread.start { [self] in readReplies(decoder) }
        BackgroundThread.start { [self] in sendPings() }
    }

    /// Whether the connection still stands.
    public var isConnected: Bool { tracker.loss == nil }

    /// Why the connection was lost, once it was.
    public var lossReason: String? { tracker.loss }

    /// Sends `message` after every message sent before it.
    /// - Throws: ``ProtocolError/frameTooLarge(length:limit:)`` if it does not fit in a frame
    ///   (nothing is sent). A lost connection is not an error: the ticket reports it.
    public func send(_ message: Message) throws -> Ticket {
        try transmit { try $0.encode(message) }
    }

    /// Sends a `write` of `data`, copied once, straight from the caller's buffer into the frame.
    /// - Throws: ``ProtocolError/frameTooLarge(length:limit:)`` if `data` exceeds
    ///   ``WireFormat/maximumDataLength``.
    public func sendWrite(module: UInt16, node: NodeRef, offset: UInt64, data: UnsafeRawBufferPointer) throws -> Ticket {
        try transmit { try $0.encodeWrite(module: module, node: node, offset: offset, data: data) }
    }

    /// Blocks until the peer applied the ticket's message, refused it, or the connection is lost.
    /// - Parameter timeout: counted from the send; defaults to ``Settings/acknowledgementTimeout``.
    ///   When it expires the connection is declared lost, for every waiter.
    public func wait(for ticket: Ticket, timeout: Duration? = nil) -> DeliveryOutcome {
        let timeout = timeout ?? settings.acknowledgementTimeout
        if let outcome = tracker.outcome(of: ticket.sequence, until: ticket.sentAt + timeout) { return outcome }
        connectionLost("no acknowledgement of frame \(ticket.sequence) within \(timeout)")
        return tracker.outcome(of: ticket.sequence, until: .now) ?? .peerLost
    }

    /// Waits like ``wait(for:timeout:)`` for a request (`moduleStatus`, `regionChecksumsRequest`)
    /// and returns the peer's answer with the outcome; `nil` when it was not applied or the peer
    /// acknowledged it without answering.
    public func reply(to ticket: Ticket, timeout: Duration? = nil) -> (DeliveryOutcome, Message?) {
        let outcome = wait(for: ticket, timeout: timeout)
        return (outcome, outcome == .applied ? tracker.takeReply(to: ticket.sequence) : nil)
    }

    /// Ends the connection: waiters get ``DeliveryOutcome/peerLost`` unless already acknowledged.
    public func close() {
        if tracker.markLost("closed locally") { logger.info("replication to \(peerDescription) closed") }
        socket.shutdown()
    }

    private func transmit(_ encode: (inout FrameEncoder) throws -> EncodedFrame) throws -> Ticket {
        try sendLock.locked {
            guard isConnected else { return .unsent() }
            let frame = try encode(&encoder)
            tracker.recordSent(frame.sequence)
            let ticket = Ticket(sequence: frame.sequence, sentAt: .now)
            do {
                try socket.send(frame.bytes)
            } catch {
                connectionLost("cannot send: \(error)")
            }
            return ticket
        }
    }

    /// The reader thread: acks, nacks and pongs until the connection ends.
    private func readReplies(_ decoder: FrameDecoder) {
        var decoder = decoder
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        do {
            while true {
                while let frame = try decoder.nextFrame() { try handleReply(frame) }
                let count = try buffer.withUnsafeMutableBytes { try socket.receive(into: $0, deadline: nil) }
                guard count > 0 else {
                    try decoder.finish()
                    return connectionLost("the peer closed the connection")
                }
                decoder.feed(buffer[..<count])
            }
        } catch let error as ProtocolError {
            connectionLost(TransportError.protocolViolation(error).description)
        } catch {
            connectionLost("\(error)")
        }
    }

    private func handleReply(_ frame: Frame) throws {
        switch try Message(decoding: frame) {
        case .ack(let ack): try tracker.acknowledge(through: ack.sequence)
        case .nack(let nack): try tracker.fail(nack.sequence, errno: nack.errno)
        case .pong: break
        case .regionChecksumsReply(let reply): try tracker.reply(to: reply.requestSequence, with: .regionChecksumsReply(reply))
        case .moduleStatusReply(let reply): try tracker.reply(to: reply.requestSequence, with: .moduleStatusReply(reply))
        case .verifyReply(let reply): try tracker.reply(to: reply.requestSequence, with: .verifyReply(reply))
        case .controlReply(let reply): try tracker.reply(to: reply.requestSequence, with: .controlReply(reply))
        default: throw TransportError.unexpectedMessage(frame.type)
        }
    }

    /// The liveness thread: a ping per interval, each waited for like any message.
    private func sendPings() {
        var token: UInt64 = 0
        while true {
            token += 1
            guard let ticket = try? send(.ping(token: token)), wait(for: ticket) == .applied,
                  !tracker.waitForLoss(until: ticket.sentAt + settings.pingInterval) else { return }
        }
    }

    private func connectionLost(_ reason: String) {
        guard tracker.markLost(reason) else { return }
        logger.warning("replication to \(peerDescription) lost: \(reason)")
        socket.shutdown()
    }
}
