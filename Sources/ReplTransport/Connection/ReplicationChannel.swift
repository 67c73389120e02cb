import ReplProtocol

/// An authenticated replication connection to the peer node, as the handshake left it.
///
/// ``ReplicationListener`` and ``ReplicationConnector`` make channels; hand each one to exactly
/// one ``ReplicationSender`` (the primary's end) or ``ReplicationReceiver`` (the secondary's end).
/// Every frame on it is integrity-protected with the session keys the handshake derived.
public final class ReplicationChannel {
    /// The peer's node name, as it proved it in the handshake.
    public let peerNodeName: String
    /// The peer's `host:port`, for log lines.
    public let peerAddress: String
    /// The module list both nodes agreed on; operation frames name a module by its index here.
    public let modules: [String]

    let socket: Socket
    let keys: SessionKeys
    /// Holds any session frames that arrived together with the handshake's last frame.
    let decoder: FrameDecoder

    init(socket: Socket, peer: Hello, keys: SessionKeys, decoder: FrameDecoder) {
        self.socket = socket
        peerNodeName = peer.nodeName
        peerAddress = socket.remoteAddress
        modules = peer.modules
        self.keys = keys
        self.decoder = decoder
    }

    /// "node 'node2' at 127.0.0.2:7788", for log lines.
    public var peerDescription: String { "node '\(peerNodeName)' at \(peerAddress)" }

    /// Closes the connection (e.g. a channel the caller decided not to use).
    public func close() { socket.shutdown() }
}
