import Logging
import ReplProtocol

/// The secondary's end of a replication channel: applies the primary's operations in stream
/// order and acknowledges them.
///
/// ``run(apply:)`` blocks the calling thread. It decodes the authenticated frames in sequence
/// order and hands every replicated operation to the `apply` closure, one at a time. Once the
/// bytes received so far hold no further complete frame, it sends, in one write: a `nack` for
/// each operation that failed (in order), then one cumulative `ack` for everything handled. An
/// operation is acknowledged only after `apply` returned for it, so for `fsync` the closure's
/// fsync is done before the primary hears of it. `ping` is answered with `pong`; requests are
/// answered with the reply message the closure returns.
public final class ReplicationReceiver {
    /// What the `apply` closure reports for one operation.
    public enum ApplyResult: Equatable, Sendable {
        case applied
        /// The operation failed on this node with `errno`; the primary's waiter receives it.
        case failed(errno: Int32)
        /// A request (`regionChecksumsRequest`, `moduleStatus`) was answered with this message,
        /// sent back before the acknowledgement that covers the request.
        case replied(Message)
    }

    /// Limits of the receive loop.
    public struct Settings: Sendable {
        /// Silence from the primary for this long ends the connection (it pings every second).
        public var idleTimeout: Duration
        /// Most bytes taken from the socket at once, and so decoded between two acknowledgements.
        public var readSize: Int

        public init(idleTimeout: Duration = .seconds(10), readSize: Int = 256 << 10) {
            self.idleTimeout = idleTimeout
            self.readSize = readSize
        }
    }

    /// "node 'node1' at 127.0.0.1:40112", for log lines.
    public let peerDescription: String
    /// The limits this receiver runs with.
    public let settings: Settings

    private let channel: ReplicationChannel
    private let logger: Logger
    private let state = Monitor()
    private var isStopped = false

    /// Takes over `channel`; nothing is read until ``run(apply:)``.
    public init(channel: ReplicationChannel, settings: Settings = Settings(), logger: Logger) {
        peerDescription = channel.peerDescription
        self.channel = channel
        self.settings = settings
        self.logger = logger
    }

    /// Applies and acknowledges operations until the primary closes the connection or ``stop()``
    /// is called (then it returns), or the stream breaks (then it logs one line and throws).
    /// - Parameter apply: called on this thread with each operation's sequence number and message.
    /// - Throws: ``TransportError``: invalid frames, an unexpected message, silence, socket errors.
    public func run(apply: (_ sequence: UInt64, _ message: Message) -> ApplyResult) throws {
        do {
            try receiveFrames(apply: apply)
        } catch let error as ProtocolError {
            try end(with: .protocolViolation(error))
        } catch let error as TransportError {
            try end(with: error)
        }
    }

    /// Ends the connection from another thread; ``run(apply:)`` returns after the operation in
    /// progress, without acknowledging what it has not yet acknowledged.
    public func stop() {
        state.locked { isStopped = true }
        channel.socket.shutdown()
    }

    private func receiveFrames(apply: (UInt64, Message) -> ApplyResult) throws {
        let socket = channel.socket
        var decoder = channel.decoder
        var encoder = FrameEncoder(sendingKey: channel.keys.sending)
        var buffer = [UInt8](repeating: 0, count: settings.readSize)
        var replies: [UInt8] = []
        var handledThrough: UInt64 = 0
        var acknowledgedThrough: UInt64 = 0
        while true {
            while let frame = try decoder.nextFrame() {
                let message = try Message(decoding: frame)
                if case .ping(let token) = message {
                    replies += try encoder.encode(.pong(token: token)).bytes
                } else if frame.type.isReplicatedOperation {
                    switch apply(frame.sequence, message) {
                    case .applied: break
                    case .failed(let code):
                        replies += try encoder.encode(.nack(Nack(sequence: frame.sequence, errno: code))).bytes
                    case .replied(let answer):
                        replies += try encoder.encode(answer).bytes
                    }
                } else {
                    throw TransportError.unexpectedMessage(frame.type)
                }
                handledThrough = frame.sequence
            }
            if handledThrough > acknowledgedThrough {
                replies += try encoder.encode(.ack(Ack(sequence: handledThrough))).bytes
                acknowledgedThrough = handledThrough
            }
            if !replies.isEmpty {
                try socket.send(replies)
                replies.removeAll(keepingCapacity: true)
            }
            let count = try buffer.withUnsafeMutableBytes {
                try socket.receive(into: $0, deadline: .now + settings.idleTimeout)
            }
            guard count > 0 else {
                try decoder.finish()
                logger.info("replication from \(peerDescription) ended: \(stopped ? "stopped" : "closed by the peer")")
                return
            }
            decoder.feed(buffer[..<count])
        }
    }

    private var stopped: Bool { state.locked { isStopped } }

    private func end(with error: TransportError) throws {
        channel.socket.shutdown()
        if stopped {
            logger.info("replication from \(peerDescription) ended: stopped")
            return
        }
        logger.warning("replication from \(peerDescription) broken: \(error)")
        throw error
    }
}

extension MessageType {
    /// Operations and resynchronisation messages: what the primary sends for the peer to apply.
    var isReplicatedOperation: Bool { rawValue >= MessageType.bind.rawValue }
}
