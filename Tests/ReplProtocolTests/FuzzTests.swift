import XCTest
@testable import ReplProtocol
import TestSupport

/// Thousands of seeded random, damaged and oversized inputs: the decoder and the handshake never
/// crash, always end with frames or one clear error, and never hold more than one frame's worth
/// of memory.
final class FuzzTests: XCTestCase {
    private static let largestChunk = 8192

    /// Feeds `input` in random chunks and takes every frame (decoding its payload too); returns the
    /// number of frames and the error that stopped the stream, if any.
    private func consume(_ input: [UInt8], decoder: inout FrameDecoder, chunker: inout Chunker,
                         context: String) -> (frames: Int, error: ProtocolError?) {
        var count = 0
        for chunk in chunker.chunks(of: input) {
            decoder.feed(chunk)
            XCTAssertLessThanOrEqual(decoder.bufferCapacity, WireFormat.maximumFrameLength + FuzzTests.largestChunk, context)
            do {
                while let frame = try decoder.nextFrame() {
                    count += 1
                    XCTAssertLessThanOrEqual(frame.payload.count, WireFormat.maximumPayloadLength, context)
                    if let error = protocolError({ _ = try Message(decoding: frame) }) { assertOneLine(error, context) }
                }
            } catch {
                let error = error as! ProtocolError
                assertOneLine(error, context)
                XCTAssertEqual(protocolError { _ = try decoder.nextFrame() }, error, "errors are final: \(context)")
                return (count, error)
            }
        }
        return (count, protocolError { try decoder.finish() })
    }

    private func assertOneLine(_ error: ProtocolError, _ context: String) {
        XCTAssertFalse(error.description.isEmpty, context)
        XCTAssertFalse(error.description.contains("\n"), context)
    }

    func testDecoderSurvivesRandomDamagedAndOversizedStreams() throws {
        let keys = try XCTUnwrap(HandshakeRun().initiator.keys)
        let samples = sampleMessages()
        var outcomes = (frames: 0, errors: 0, clean: 0)
        for seed in 0..<3000 as Range<UInt64> {
            var generator = SeededGenerator(seed: seed)
            let authenticated = Bool.random(using: &generator)
            var encoder = authenticated ? FrameEncoder(sendingKey: keys.sending) : FrameEncoder()
            var valid: [UInt8] = []
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                valid += try encoder.encode(samples.randomElement(using: &generator)!).bytes
            }
            let input: [UInt8]
            switch seed % 4 {
            case 0: input = generator.bytes(Int.random(in: 0...600, using: &generator))
            case 1: input = rawFrame(type: UInt8.random(in: .min ... .max, using: &generator),
                                     flags: UInt16.random(in: 0...3, using: &generator),
                                     length: UInt32.random(in: .min ... .max, using: &generator),
                                     sequence: UInt64.random(in: 0...2, using: &generator),
                                     payload: generator.bytes(Int.random(in: 0...300, using: &generator)))
            default:
                var mutator = Mutator(generator: generator)
                input = mutator.mutate(valid)
            }
            var decoder = FrameDecoder()
            if authenticated { decoder.requireAuthentication(with: keys.sending) }
            var chunker = Chunker(generator: generator,
                                  maximumChunk: [1, 16, 512, FuzzTests.largestChunk].randomElement(using: &generator)!)
            let outcome = consume(input, decoder: &decoder, chunker: &chunker, context: "seed \(seed)")
            outcomes.frames += outcome.frames
            if outcome.error == nil { outcomes.clean += 1 } else { outcomes.errors += 1 }
        }
        XCTAssertGreaterThan(outcomes.frames, 1000, "damaged streams still yield their intact leading frames")
        XCTAssertGreaterThan(outcomes.errors, 2000)
    }

    func testDecoderStaysWithinOneFrameOnMaximalAndOversizedFrames() throws {
        var encoder = FrameEncoder()
        let maximal = try encoder.encode(.write(Write(module: 0, node: NodeRef(2), offset: 0,
                                                      data: ArraySlice(repeating: 0x5A, count: WireFormat.maximumDataLength)))).bytes
        var oversized = maximal
        oversized.replaceSubrange(8..<12, with: [0x00, 0x40, 0x20, 0x01])  // 4 MiB + 8 KiB + 1
        for (seed, input) in [maximal + maximal, oversized].enumerated() {
            var decoder = FrameDecoder()
            var chunker = Chunker(generator: SeededGenerator(seed: UInt64(seed)), maximumChunk: FuzzTests.largestChunk)
            let outcome = consume(input, decoder: &decoder, chunker: &chunker, context: "input \(seed)")
            XCTAssertEqual(outcome.frames, seed == 0 ? 2 : 0)
            if seed == 1 {
                guard case .frameTooLarge? = outcome.error else {
                    return XCTFail("expected frameTooLarge, got \(String(describing: outcome.error))")
                }
            }
        }
    }

    func testEveryPayloadDecoderSurvivesRandomAndDamagedPayloads() {
        var generator = SeededGenerator(seed: 42)
        var mutator = Mutator(generator: SeededGenerator(seed: 43))
        var plain = FrameEncoder()
        let validPayloads = sampleMessages().map { message in
            (message.type, Array(try! plain.encode(message).bytes.dropFirst(WireFormat.headerLength)))
        }
        for _ in 0..<4000 {
            let (type, payload): (MessageType, [UInt8])
            if Bool.random(using: &generator) {
                type = MessageType.allCases.randomElement(using: &generator)!
                payload = generator.bytes(Int.random(in: 0...96, using: &generator))
            } else {
                let valid = validPayloads.randomElement(using: &generator)!
                (type, payload) = (valid.0, mutator.mutate(valid.1))
            }
            let frame = Frame(type: type, flags: [], sequence: 0, payload: payload[...])
            if let error = protocolError({ _ = try Message(decoding: frame) }) { assertOneLine(error, "\(type)") }
        }
    }

    /// Both directions of a real handshake, damaged: the side receiving them never establishes a
    /// session, and whatever it answers is well-formed.
    func testHandshakeNeverEstablishesOnDamagedOrRandomInput() throws {
        let recorded = HandshakeRun()
        XCTAssertNotNil(recorded.responder.keys, "the recorded streams are a successful handshake")
        let (toResponder, toInitiator) = (recorded.sentByInitiator, recorded.sentByResponder)

        for seed in 0..<1500 as Range<UInt64> {
            var generator = SeededGenerator(seed: seed)
            let towardsResponder = seed % 2 == 0
            let original = towardsResponder ? toResponder : toInitiator
            var mutator = Mutator(generator: generator)
            let input = seed % 10 == 9 ? generator.bytes(Int.random(in: 1...400, using: &generator)) : mutator.mutate(original)
            var side = towardsResponder
                ? Handshake.responder(configuration: node2, nonce: nonce(2))
                : Handshake.initiator(configuration: node1, nonce: nonce(1)).handshake
            var decoder = FrameDecoder()
            var chunker = Chunker(generator: generator, maximumChunk: Int.random(in: 1...300, using: &generator))
            let answer = deliver(input, to: &side, decoder: &decoder, chunker: &chunker)
            let context = "seed \(seed), towards \(towardsResponder ? "responder" : "initiator")"
            if !input.starts(with: original) { XCTAssertNil(side.keys, context) }
            var answerDecoder = FrameDecoder()
            let answerFrames = try frames(from: answer, decoder: &answerDecoder)
            XCTAssertNoThrow(try answerDecoder.finish(), context)
            for frame in answerFrames { XCTAssertNoThrow(try Message(decoding: frame), context) }
            if let refusal = side.refusal, !refusal.byPeer {
                XCTAssertEqual(answerFrames.last?.type, .refuse, context)
            }
        }
    }
}
