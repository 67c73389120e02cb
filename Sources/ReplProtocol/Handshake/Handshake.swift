/// One side of the handshake that opens a connection: both nodes introduce themselves, prove
/// they hold the cluster's pre-shared key, and derive the session keys.
///
///     initiator                          responder
///     hello(version, cluster, node, modules, nonce I)  ->
///                   <-  helloReply(version, cluster, node, modules, nonce R)
///     proof(HMAC(psk, initiator, hellos))  ->
///                   <-  proof(HMAC(psk, responder, hellos))
///     accept  ->
///
/// Either side answers a problem with `refuse(reason, detail)` instead and stops. The machine
/// does no I/O: feed it the frames the ``FrameDecoder`` yields (or the error it threw), send the
/// bytes it returns, and stop once ``state`` is no longer `.inProgress`.
public struct Handshake {
    /// Where the handshake stands.
    public enum State {
        case inProgress
        case established(SessionKeys)
        case refused(Refusal)
    }

    public private(set) var state: State = .inProgress
    /// The peer's hello, once received: its node name, modules and nonce.
    public private(set) var peerHello: Hello?

    /// The message this side waits for next.
    private enum Step {
        case awaitingHello
        case awaitingHelloReply
        case awaitingProof
        case awaitingAccept
        case finished
    }

    private let role: HandshakeRole
    private let configuration: HandshakeConfiguration
    private let ownHello: Hello
    private let ownHelloPayload: [UInt8]
    private var step: Step
    private var transcript: HandshakeTranscript?
    private var encoder = FrameEncoder()

    private init(role: HandshakeRole, configuration: HandshakeConfiguration, nonce: HandshakeNonce) {
        self.role = role
        self.configuration = configuration
        ownHello = Hello(clusterName: configuration.clusterName, nodeName: configuration.nodeName,
                         nonce: nonce, modules: configuration.modules)
        var writer = ByteWriter()
        ownHello.encode(into: &writer)
        ownHelloPayload = writer.bytes
        step = role == .initiator ? .awaitingHelloReply : .awaitingHello
    }

    /// The side that connected; send `hello` first.
    public static func initiator(configuration: HandshakeConfiguration,
                                 nonce: HandshakeNonce) -> (handshake: Handshake, hello: [UInt8]) {
        var handshake = Handshake(role: .initiator, configuration: configuration, nonce: nonce)
        let hello = handshake.send(.hello(handshake.ownHello))
        return (handshake, hello)
    }

    /// The side that accepted the connection; it waits for the peer's hello.
    public static func responder(configuration: HandshakeConfiguration, nonce: HandshakeNonce) -> Handshake {
        Handshake(role: .responder, configuration: configuration, nonce: nonce)
    }

    /// Consumes one frame from the peer; returns the bytes to send back (possibly none).
    public mutating func receive(_ frame: Frame) -> [UInt8] {
        guard case .inProgress = state else { return [] }
        let message: Message
        do {
            message = try Message(decoding: frame)
        } catch {
            if frame.type == .hello || frame.type == .helloReply, let version = frame.payload.first,
               version != WireFormat.version {
                return refuse(.wrongVersion, versionMismatch(version))
            }
            return refuse(.malformedMessage, "\(error)")
        }
        switch (step, message) {
        case (_, .refuse(let refusal)):
            step = .finished
            state = .refused(Refusal(reason: refusal.reason, detail: refusal.detail, byPeer: true))
            return []
        case (.awaitingHello, .hello(let hello)), (.awaitingHelloReply, .helloReply(let hello)):
            return receiveHello(hello, payload: frame.payload)
        case (.awaitingProof, .proof(let proof)):
            return receiveProof(proof)
        case (.awaitingAccept, .accept):
            establish()
            return []
        default:
            return refuse(.unexpectedMessage, "expected \(expectedMessage), received \(frame.type)")
        }
    }

    /// Consumes the error the decoder threw instead of a frame; returns the `refuse` to send.
    public mutating func receive(undecodable error: ProtocolError) -> [UInt8] {
        guard case .inProgress = state else { return [] }
        if case .unsupportedVersion = error { return refuse(.wrongVersion, error.description) }
        return refuse(.malformedMessage, error.description)
    }

    private mutating func receiveHello(_ hello: Hello, payload: ArraySlice<UInt8>) -> [UInt8] {
        peerHello = hello
        if let (reason, detail) = problem(with: hello) { return refuse(reason, detail) }
        let transcript: HandshakeTranscript
        switch role {
        case .responder:
            transcript = HandshakeTranscript(hello: hello, helloPayload: payload,
                                             helloReply: ownHello, helloReplyPayload: ownHelloPayload[...])
        case .initiator:
            transcript = HandshakeTranscript(hello: ownHello, helloPayload: ownHelloPayload[...],
                                             helloReply: hello, helloReplyPayload: payload)
        }
        self.transcript = transcript
        step = .awaitingProof
        switch role {
        case .responder: return send(.helloReply(ownHello))
        case .initiator: return send(.proof(transcript.proof(by: .initiator, key: configuration.preSharedKey)))
        }
    }

    private mutating func receiveProof(_ proof: Proof) -> [UInt8] {
        guard let transcript else { return refuse(.unexpectedMessage, "proof before hello") }
        let peerRole: HandshakeRole = role == .initiator ? .responder : .initiator
        guard transcript.isValid(proof, by: peerRole, key: configuration.preSharedKey) else {
            let peer = peerHello?.nodeName ?? "?"
            return refuse(.wrongKey, "the proof of node '\(peer)' does not match: the pre-shared keys differ")
        }
        switch role {
        case .responder:
            step = .awaitingAccept
            return send(.proof(transcript.proof(by: .responder, key: configuration.preSharedKey)))
        case .initiator:
            let accept = send(.accept)
            establish()
            return accept
        }
    }

    private mutating func establish() {
        guard let transcript else { return }
        step = .finished
        state = .established(SessionKeys.derive(preSharedKey: configuration.preSharedKey, transcript: transcript,
                                                isInitiator: role == .initiator))
    }

    /// The first thing wrong with the peer's hello, if any.
    private func problem(with peer: Hello) -> (RefusalReason, String)? {
        if peer.protocolVersion != WireFormat.version {
            return (.wrongVersion, versionMismatch(peer.protocolVersion))
        }
        if peer.clusterName != configuration.clusterName {
            return (.wrongCluster, "node '\(peer.nodeName)' belongs to cluster '\(peer.clusterName)', "
                + "node '\(configuration.nodeName)' to cluster '\(configuration.clusterName)'")
        }
        if !configuration.knownPeers.contains(peer.nodeName) {
            return (.unknownNode, "node '\(peer.nodeName)' is not a peer of node '\(configuration.nodeName)' "
                + "in cluster '\(configuration.clusterName)'")
        }
        if peer.modules != configuration.modules {
            return (.moduleMismatch, "node '\(peer.nodeName)' has modules \(peer.modules), "
                + "node '\(configuration.nodeName)' has \(configuration.modules)")
        }
        return nil
    }

    private func versionMismatch(_ version: UInt8) -> String {
        "unsupported protocol version \(version) (we speak \(WireFormat.version))"
    }

    private var expectedMessage: String {
        switch step {
        case .awaitingHello: return "hello"
        case .awaitingHelloReply: return "helloReply"
        case .awaitingProof: return "proof"
        case .awaitingAccept: return "accept"
        case .finished: return "nothing"
        }
    }

    private mutating func refuse(_ reason: RefusalReason, _ detail: String) -> [UInt8] {
        step = .finished
        state = .refused(Refusal(reason: reason, detail: detail, byPeer: false))
        return send(.refuse(Refuse(reason: reason, detail: detail)))
    }

    private mutating func send(_ message: Message) -> [UInt8] {
        // Handshake messages are far below the frame limit (names are checked by the configuration).
        try! encoder.encode(message).bytes
    }
}
