import XCTest
@testable import ReplProtocol
import TestSupport

/// The handshake establishes matching session keys, or ends with the right reason on each side.
final class HandshakeTests: XCTestCase {
    private func assertRefused(_ run: HandshakeRun, by refuser: HandshakeRole, _ reason: RefusalReason,
                               file: StaticString = #filePath, line: UInt = #line) {
        let (refusing, refused) = refuser == .responder ? (run.responder, run.initiator) : (run.initiator, run.responder)
        XCTAssertEqual(refusing.refusal?.reason, reason, "refusing side: \(refusing.state)", file: file, line: line)
        XCTAssertEqual(refusing.refusal?.byPeer, false, file: file, line: line)
        XCTAssertEqual(refused.refusal?.reason, reason, "refused side: \(refused.state)", file: file, line: line)
        XCTAssertEqual(refused.refusal?.byPeer, true, file: file, line: line)
        XCTAssertEqual(refused.refusal?.detail, refusing.refusal?.detail, file: file, line: line)
    }

    /// Whether a frame tagged by `encoder` passes `decoder`'s check.
    private func accepts(_ decoder: FrameDecoder, frameFrom encoder: FrameEncoder) -> Bool {
        var encoder = encoder
        var decoder = decoder
        return (try? frames(from: try encoder.encode(.ping(token: 1)).bytes, decoder: &decoder).count) == 1
    }

    private func decoder(receivingWith keys: SessionKeys, swapped: Bool = false) -> FrameDecoder {
        var decoder = FrameDecoder()
        decoder.requireAuthentication(with: swapped ? keys.sending : keys.receiving)
        return decoder
    }

    func testHandshakeEstablishesMatchingKeysPerDirection() throws {
        let run = HandshakeRun()
        let initiator = try XCTUnwrap(run.initiator.keys)
        let responder = try XCTUnwrap(run.responder.keys)
        XCTAssertTrue(accepts(decoder(receivingWith: responder), frameFrom: FrameEncoder(sendingKey: initiator.sending)))
        XCTAssertTrue(accepts(decoder(receivingWith: initiator), frameFrom: FrameEncoder(sendingKey: responder.sending)))
        XCTAssertFalse(accepts(decoder(receivingWith: initiator), frameFrom: FrameEncoder(sendingKey: initiator.sending)),
                       "each direction has its own key")
        XCTAssertEqual(run.initiator.peerHello?.nodeName, "node2")
        XCTAssertEqual(run.responder.peerHello?.nodeName, "node1")
    }

    func testKeysDependOnBothNonces() throws {
        let reference = try XCTUnwrap(HandshakeRun().initiator.keys)
        let again = try XCTUnwrap(HandshakeRun().initiator.keys)
        let otherInitiatorNonce = try XCTUnwrap(HandshakeRun(initiatorNonce: nonce(5)).initiator.keys)
        let otherResponderNonce = try XCTUnwrap(HandshakeRun(responderNonce: nonce(5)).initiator.keys)
        let referenceDecoder = decoder(receivingWith: reference, swapped: true)
        XCTAssertTrue(accepts(referenceDecoder, frameFrom: FrameEncoder(sendingKey: again.sending)))
        XCTAssertFalse(accepts(referenceDecoder, frameFrom: FrameEncoder(sendingKey: otherInitiatorNonce.sending)))
        XCTAssertFalse(accepts(referenceDecoder, frameFrom: FrameEncoder(sendingKey: otherResponderNonce.sending)))
        XCTAssertNotEqual(HandshakeNonce.random(), HandshakeNonce.random())
    }

    func testHandshakeSucceedsWhateverTheChunking() {
        for seed in 0..<10 as Range<UInt64> {
            let run = HandshakeRun(chunker: Chunker(generator: SeededGenerator(seed: seed), maximumChunk: 1 + Int(seed) * 7))
            XCTAssertNotNil(run.initiator.keys, "seed \(seed)")
            XCTAssertNotNil(run.responder.keys, "seed \(seed)")
        }
    }

    func testSessionFramesRightBehindTheHandshakeAreAuthenticated() throws {
        var run = HandshakeRun()
        let keys = try XCTUnwrap(run.initiator.keys)
        var encoder = FrameEncoder(sendingKey: keys.sending)
        let write = Message.write(Write(module: 1, node: NodeRef(4), offset: 0, data: [1, 2, 3]))
        let frame = try XCTUnwrap(try frames(from: try encoder.encode(write).bytes, decoder: &run.responderDecoder).first)
        XCTAssertEqual(frame.sequence, 1)
        XCTAssertEqual(try Message(decoding: frame), write)
    }

    func testWrongKeyIsRefusedByTheResponder() {
        let run = HandshakeRun(responder: configuration(node: "node2", peers: ["node1"], key: Array(repeating: 9, count: 32)))
        assertRefused(run, by: .responder, .wrongKey)
    }

    func testWrongClusterIsRefused() {
        let run = HandshakeRun(initiator: configuration(cluster: "test", node: "node1", peers: ["node2"]))
        assertRefused(run, by: .responder, .wrongCluster)
        XCTAssertEqual(run.responder.refusal?.detail,
                       "node 'node1' belongs to cluster 'test', node 'node2' to cluster 'prod'")
    }

    func testUnknownInitiatorIsRefusedByTheResponder() {
        let run = HandshakeRun(initiator: configuration(node: "intruder", peers: ["node2"]))
        assertRefused(run, by: .responder, .unknownNode)
    }

    func testUnknownResponderIsRefusedByTheInitiator() {
        let run = HandshakeRun(initiator: configuration(node: "node1", peers: ["node3"]))
        assertRefused(run, by: .initiator, .unknownNode)
    }

    func testDifferentModuleListsAreRefused() {
        let run = HandshakeRun(initiator: configuration(node: "node1", peers: ["node2"], modules: ["files", "pg"]))
        assertRefused(run, by: .responder, .moduleMismatch)
    }

    func testWrongVersionInHelloIsRefused() throws {
        var responder = Handshake.responder(configuration: node2, nonce: nonce(2))
        var hello = Hello(clusterName: "prod", nodeName: "node1", nonce: nonce(1), modules: ["pg", "files"])
        hello.protocolVersion = 2
        var encoder = FrameEncoder()
        var decoder = FrameDecoder()
        let frame = try XCTUnwrap(try frames(from: try encoder.encode(.hello(hello)).bytes, decoder: &decoder).first)
        let answer = responder.receive(frame)
        XCTAssertEqual(responder.refusal?.reason, .wrongVersion)
        XCTAssertEqual(responder.refusal?.detail, "unsupported protocol version 2 (we speak 1)")
        XCTAssertEqual(try Message(decoding: try XCTUnwrap(try frames(from: answer, decoder: &decoder).first)),
                       .refuse(Refuse(reason: .wrongVersion, detail: "unsupported protocol version 2 (we speak 1)")))
    }

    func testWrongVersionInFrameHeaderIsRefused() {
        var responder = Handshake.responder(configuration: node2, nonce: nonce(2))
        var decoder = FrameDecoder()
        decoder.feed(rawFrame(version: 7, type: MessageType.hello.rawValue, payload: [7]))
        do {
            _ = try decoder.nextFrame()
            XCTFail("a version 7 frame was decoded")
        } catch {
            var initiator = Handshake.initiator(configuration: node1, nonce: nonce(1)).handshake
            var initiatorDecoder = FrameDecoder()
            var chunker = Chunker()
            _ = deliver(responder.receive(undecodable: error as! ProtocolError), to: &initiator,
                        decoder: &initiatorDecoder, chunker: &chunker)
            let detail = "unsupported protocol version 7 (we speak 1)"
            XCTAssertEqual(responder.refusal, Refusal(reason: .wrongVersion, detail: detail, byPeer: false))
            XCTAssertEqual(initiator.refusal, Refusal(reason: .wrongVersion, detail: detail, byPeer: true))
        }
    }

    func testMalformedHelloIsRefused() throws {
        var responder = Handshake.responder(configuration: node2, nonce: nonce(2))
        var decoder = FrameDecoder()
        let frame = try XCTUnwrap(try frames(from: rawFrame(type: MessageType.hello.rawValue, payload: [1, 0, 200, 65]),
                                             decoder: &decoder).first)
        _ = responder.receive(frame)
        XCTAssertEqual(responder.refusal?.reason, .malformedMessage)
        XCTAssertEqual(responder.refusal?.detail, "truncated field 'cluster name' in hello message")
    }

    func testOperationBeforeTheHandshakeIsUnexpected() throws {
        var responder = Handshake.responder(configuration: node2, nonce: nonce(2))
        var encoder = FrameEncoder()
        var decoder = FrameDecoder()
        let frame = try XCTUnwrap(try frames(from: try encoder.encode(.forget(Forget(module: 0, node: NodeRef(3)))).bytes,
                                             decoder: &decoder).first)
        _ = responder.receive(frame)
        XCTAssertEqual(responder.refusal,
                       Refusal(reason: .unexpectedMessage, detail: "expected hello, received forget", byPeer: false))
    }

    func testEarlyAcceptIsUnexpectedForTheInitiator() throws {
        var initiator = Handshake.initiator(configuration: node1, nonce: nonce(1)).handshake
        var encoder = FrameEncoder()
        var decoder = FrameDecoder()
        _ = initiator.receive(try XCTUnwrap(try frames(from: try encoder.encode(.accept).bytes, decoder: &decoder).first))
        XCTAssertEqual(initiator.refusal?.reason, .unexpectedMessage)
    }

    /// A responder without the key cannot pass: it cannot forge its proof.
    func testForgedResponderProofIsRefusedByTheInitiator() throws {
        var (initiator, _) = Handshake.initiator(configuration: node1, nonce: nonce(1))
        var encoder = FrameEncoder()
        var decoder = FrameDecoder()
        let reply = Hello(clusterName: "prod", nodeName: "node2", nonce: nonce(2), modules: ["pg", "files"])
        let stream = try encoder.encode(.helloReply(reply)).bytes
            + encoder.encode(.proof(Proof(code: [UInt8](repeating: 0, count: 32)))).bytes
        for frame in try frames(from: stream, decoder: &decoder) { _ = initiator.receive(frame) }
        XCTAssertEqual(initiator.refusal?.reason, .wrongKey)
        XCTAssertEqual(initiator.refusal?.byPeer, false)
    }

    func testFinishedHandshakeIgnoresFurtherFrames() throws {
        var run = HandshakeRun()
        var encoder = FrameEncoder()
        var decoder = FrameDecoder()
        let frame = try XCTUnwrap(try frames(from: try encoder.encode(.accept).bytes, decoder: &decoder).first)
        XCTAssertEqual(run.responder.receive(frame), [])
        XCTAssertNotNil(run.responder.keys)
    }

    func testConfigurationRefusesWhatTheProtocolCannotCarry() {
        XCTAssertThrowsError(try HandshakeConfiguration(clusterName: "", nodeName: "a", knownPeers: [], modules: [],
                                                        preSharedKey: clusterKey))
        XCTAssertThrowsError(try HandshakeConfiguration(clusterName: "c", nodeName: String(repeating: "n", count: 256),
                                                        knownPeers: [], modules: [], preSharedKey: clusterKey))
        XCTAssertThrowsError(try HandshakeConfiguration(clusterName: "c", nodeName: "a", knownPeers: [], modules: [],
                                                        preSharedKey: [1, 2, 3])) { error in
            XCTAssertEqual("\(error)", "pre-shared key of 3 bytes is shorter than 16 bytes")
        }
    }
}
