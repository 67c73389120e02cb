import Logging
import ReplProtocol

/// The secondary's side of the connection: listens on the node's replication address and turns
/// each incoming connection that passes the handshake into a ``ReplicationChannel``.
///
/// Every connection is handshaken on its own thread, within ``handshakeTimeout``, so a silent or
/// slow peer never holds up the others. A connection that fails (wrong key, cluster, node or
/// version, malformed or oversized frames, garbage, silence) is logged as one warning line naming
/// the remote address and the reason, and closed; the listener goes on serving.
///
/// Call ``close()`` when done: the accepting thread keeps the listener alive until then.
public final class ReplicationListener {
    /// The port actually bound (the kernel's choice when asked for port 0).
    public let port: UInt16
    /// How long a new connection may take to complete its handshake.
    public let handshakeTimeout: Duration

    private let socket: Socket
    private let configuration: HandshakeConfiguration
    private let logger: Logger
    private let state = Monitor()
    private var isClosed = false

    /// Binds `address` and starts accepting; `onChannel` runs on the connection's own thread for
    /// every authenticated peer.
    /// - Throws: ``TransportError`` if the address cannot be resolved or bound.
    public init(address: NetworkAddress, configuration: HandshakeConfiguration,
                handshakeTimeout: Duration = .seconds(5), logger: Logger,
                onChannel: @escaping (ReplicationChannel) -> Void) throws {
        socket = try Socket.listening(on: address)
        port = socket.localPort
        self.handshakeTimeout = handshakeTimeout
        self.configuration = configuration
        self.logger = logger
        logger.info("listening for the replication peer on \(NetworkAddress(host: address.host, port: port))")
        BackgroundThread.start { [self] in acceptConnections(onChannel) }
    }

    /// Stops accepting; connections already handed out are not affected.
    public func close() {
        state.locked { isClosed = true }
        socket.shutdown()
    }

    private var closed: Bool { state.locked { isClosed } }

    private func acceptConnections(_ onChannel: @escaping (ReplicationChannel) -> Void) {
        while !closed {
            do {
                let connection = try socket.accept()
                BackgroundThread.start { [self] in handshake(connection, then: onChannel) }
            } catch {
                guard !closed else { break }
                logger.error("replication listener on port \(port): \(error)")
                // Out of descriptors or memory: give the system a moment instead of spinning.
                Pause.sleep(for: .milliseconds(100))
            }
        }
    }

    private func handshake(_ connection: Socket, then onChannel: (ReplicationChannel) -> Void) {
        let channel: ReplicationChannel
        do {
            channel = try HandshakeExchange.run(.responder, configuration: configuration, on: connection,
                                                deadline: .now + handshakeTimeout)
        } catch {
            logger.warning("replication connection from \(connection.remoteAddress) failed: \(error)")
            connection.shutdown()
            return
        }
        logger.info("replication connection from \(channel.peerDescription) established")
        onChannel(channel)
    }
}
