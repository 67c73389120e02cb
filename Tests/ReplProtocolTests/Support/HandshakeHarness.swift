@testable import ReplProtocol
import TestSupport

let clusterKey: [UInt8] = Array(0..<32)

func configuration(cluster: String = "prod", node: String, peers: Set<String>, modules: [String] = ["pg", "files"],
                   key: [UInt8] = clusterKey) -> HandshakeConfiguration {
    try! HandshakeConfiguration(clusterName: cluster, nodeName: node, knownPeers: peers, modules: modules,
                                preSharedKey: key)
}

let node1 = configuration(node: "node1", peers: ["node2"])
let node2 = configuration(node: "node2", peers: ["node1"])

extension Handshake {
    var keys: SessionKeys? {
        if case .established(let keys) = state { return keys }
        return nil
    }

    var refusal: Refusal? {
        if case .refused(let refusal) = state { return refusal }
        return nil
    }

    var isInProgress: Bool {
        if case .inProgress = state { return true }
        return false
    }
}

/// Cuts byte streams into chunks: whole, or of random sizes from a seeded generator.
struct Chunker {
    var generator: SeededGenerator?
    var maximumChunk = 64

    mutating func chunks(of bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        guard generator != nil else { return [bytes[...]] }
        var result: [ArraySlice<UInt8>] = []
        var start = 0
        while start < bytes.count {
            let size = Int.random(in: 1...maximumChunk, using: &generator!)
            result.append(bytes[start..<min(bytes.count, start + size)])
            start += size
        }
        return result
    }
}

/// Feeds `bytes` to one side's decoder and handshake; returns what that side answers. Once the
/// handshake is established, the decoder is switched to the session key and left holding any
/// session frames that followed.
func deliver(_ bytes: [UInt8], to handshake: inout Handshake, decoder: inout FrameDecoder,
             chunker: inout Chunker) -> [UInt8] {
    var answer: [UInt8] = []
    for chunk in chunker.chunks(of: bytes) {
        decoder.feed(chunk)
        while handshake.isInProgress {
            do {
                guard let frame = try decoder.nextFrame() else { break }
                answer += handshake.receive(frame)
                if let keys = handshake.keys { decoder.requireAuthentication(with: keys.receiving) }
            } catch {
                answer += handshake.receive(undecodable: error as! ProtocolError)
            }
        }
    }
    return answer
}

/// Both ends of a connection after their handshake ran to its end.
struct HandshakeRun {
    var initiator: Handshake
    var responder: Handshake
    var initiatorDecoder = FrameDecoder()
    var responderDecoder = FrameDecoder()
    /// Everything each side sent, in order.
    var sentByInitiator: [UInt8] = []
    var sentByResponder: [UInt8] = []

    init(initiator initiatorConfiguration: HandshakeConfiguration = node1,
         responder responderConfiguration: HandshakeConfiguration = node2,
         initiatorNonce: HandshakeNonce = nonce(1), responderNonce: HandshakeNonce = nonce(2),
         chunker: Chunker = Chunker()) {
        var chunker = chunker
        var toResponder: [UInt8]
        (initiator, toResponder) = Handshake.initiator(configuration: initiatorConfiguration, nonce: initiatorNonce)
        responder = Handshake.responder(configuration: responderConfiguration, nonce: responderNonce)
        var toInitiator: [UInt8] = []
        while !toResponder.isEmpty || !toInitiator.isEmpty {
            sentByInitiator += toResponder
            toInitiator += deliver(toResponder, to: &responder, decoder: &responderDecoder, chunker: &chunker)
            sentByResponder += toInitiator
            toResponder = deliver(toInitiator, to: &initiator, decoder: &initiatorDecoder, chunker: &chunker)
            toInitiator = []
        }
    }
}
