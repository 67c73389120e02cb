import ReplProtocol

/// Runs ReplProtocol's ``Handshake`` over a connected socket, within a deadline.
enum HandshakeExchange {
    /// Exchanges frames until the handshake is established or refused.
    ///
    /// A refusal is sent to the peer (best effort) and thrown as ``TransportError/refused(_:)``;
    /// a refusal from the peer is thrown the same way, with `byPeer` set.
    static func run(_ role: HandshakeRole, configuration: HandshakeConfiguration, on socket: Socket,
                    deadline: ContinuousClock.Instant) throws -> ReplicationChannel {
        var handshake: Handshake
        var outgoing: [UInt8]
        switch role {
        case .initiator:
            (handshake, outgoing) = Handshake.initiator(configuration: configuration, nonce: .random())
        case .responder:
            handshake = Handshake.responder(configuration: configuration, nonce: .random())
            outgoing = []
        }
        var decoder = FrameDecoder()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            switch handshake.state {
            case .inProgress:
                try socket.send(outgoing)
            case .established(let keys):
                try socket.send(outgoing)
                decoder.requireAuthentication(with: keys.receiving)
                return ReplicationChannel(socket: socket, peer: handshake.peerHello!, keys: keys, decoder: decoder)
            case .refused(let refusal):
                try? socket.send(outgoing)
                throw TransportError.refused(refusal)
            }
            do {
                if let frame = try decoder.nextFrame() {
                    outgoing = handshake.receive(frame)
                    continue
                }
            } catch let error as ProtocolError {
                outgoing = handshake.receive(undecodable: error)
                continue
            }
            outgoing = []
            let count = try buffer.withUnsafeMutableBytes { try socket.receive(into: $0, deadline: deadline) }
            guard count > 0 else { throw TransportError.closedDuringHandshake }
            decoder.feed(buffer[..<count])
        }
    }
}
