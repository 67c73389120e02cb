import XCTest
@testable import ReplProtocol

/// After the handshake, every frame is tagged and numbered: any change, replay, reorder, loss or
/// reflection is detected.
final class IntegrityTests: XCTestCase {
    private var keys: SessionKeys!

    override func setUpWithError() throws {
        keys = try XCTUnwrap(HandshakeRun().initiator.keys)
    }

    private func sessionDecoder() -> FrameDecoder {
        var decoder = FrameDecoder()
        decoder.requireAuthentication(with: keys.sending)
        return decoder
    }

    func testFlippingAnySingleBitIsDetected() throws {
        var encoder = FrameEncoder(sendingKey: keys.sending)
        let message = Message.write(Write(module: 0, node: NodeRef(2), offset: 8, data: ArraySlice(0..<40)))
        let first = try encoder.encode(message).bytes
        let second = try encoder.encode(.ping(token: 1)).bytes
        for bit in 0..<(first.count * 8) {
            var corrupted = first
            corrupted[bit / 8] ^= 1 << UInt8(bit % 8)
            var decoder = sessionDecoder()
            decoder.feed(corrupted + second)
            var yielded: [Frame] = []
            let error = protocolError {
                while let frame = try decoder.nextFrame() { yielded.append(frame) }
                try decoder.finish()
            }
            XCTAssertTrue(yielded.isEmpty, "bit \(bit): a corrupted frame was accepted")
            XCTAssertNotNil(error, "bit \(bit): corruption went unnoticed")
        }
    }

    func testReplayedFrameIsDetected() throws {
        var encoder = FrameEncoder(sendingKey: keys.sending)
        let one = try encoder.encode(.ping(token: 1)).bytes
        let two = try encoder.encode(.ping(token: 2)).bytes
        var decoder = sessionDecoder()
        XCTAssertEqual(protocolError { _ = try frames(from: one + two + two, decoder: &decoder) },
                       .sequenceOutOfOrder(received: 2, expected: 3))
    }

    func testReorderedOrLostFrameIsDetected() throws {
        var encoder = FrameEncoder(sendingKey: keys.sending)
        let one = try encoder.encode(.ping(token: 1)).bytes
        _ = try encoder.encode(.ping(token: 2))
        let three = try encoder.encode(.ping(token: 3)).bytes
        var decoder = sessionDecoder()
        XCTAssertEqual(protocolError { _ = try frames(from: one + three, decoder: &decoder) },
                       .sequenceOutOfOrder(received: 3, expected: 2))
    }

    func testFrameReflectedBackToItsSenderIsRefused() throws {
        var encoder = FrameEncoder(sendingKey: keys.sending)
        let frame = try encoder.encode(.ack(Ack(sequence: 1))).bytes
        var ownDecoder = FrameDecoder()
        ownDecoder.requireAuthentication(with: keys.receiving)
        XCTAssertEqual(protocolError { _ = try frames(from: frame, decoder: &ownDecoder) }, .badIntegrityTag(sequence: 1))
    }

    func testFrameFromAnotherSessionIsRefused() throws {
        let otherKeys = try XCTUnwrap(HandshakeRun(initiatorNonce: nonce(3)).initiator.keys)
        var encoder = FrameEncoder(sendingKey: otherKeys.sending)
        let frame = try encoder.encode(.ping(token: 1)).bytes
        var decoder = sessionDecoder()
        XCTAssertEqual(protocolError { _ = try frames(from: frame, decoder: &decoder) }, .badIntegrityTag(sequence: 1))
    }

    func testUntaggedFrameAfterHandshakeIsRefused() throws {
        var plain = FrameEncoder()
        var decoder = sessionDecoder()
        XCTAssertEqual(protocolError { _ = try frames(from: try plain.encode(.ping(token: 1)).bytes, decoder: &decoder) },
                       .missingIntegrityTag(sequence: 0))
    }
}
