import XCTest
@testable import ReplProtocol
import TestSupport

/// Framing: any split of the stream, size limits checked before allocating, one clear error per
/// kind of bad input.
final class FrameDecoderTests: XCTestCase {
    private func encodedStream() throws -> (messages: [Message], bytes: [UInt8]) {
        var encoder = FrameEncoder()
        let messages = sampleMessages()
        return (messages, try messages.flatMap { try encoder.encode($0).bytes })
    }

    func testAnySplitOfTheStreamYieldsTheSameFrames() throws {
        let (messages, bytes) = try encodedStream()
        for seed in 0..<20 as Range<UInt64> {
            var chunker = Chunker(generator: SeededGenerator(seed: seed), maximumChunk: seed == 0 ? 1 : 700)
            var decoder = FrameDecoder()
            var decoded: [Message] = []
            for chunk in chunker.chunks(of: bytes) {
                decoder.feed(chunk)
                while let frame = try decoder.nextFrame() { decoded.append(try Message(decoding: frame)) }
            }
            try decoder.finish()
            XCTAssertEqual(decoded, messages, "seed \(seed)")
        }
    }

    func testIncompleteFrameWaitsAndEndOfStreamReportsIt() throws {
        let bytes = try FrameEncoder().encodeCopy(.ping(token: 5))
        var decoder = FrameDecoder()
        decoder.feed(bytes.dropLast())
        XCTAssertNil(try decoder.nextFrame())
        XCTAssertEqual(protocolError { try decoder.finish() },
                       .truncatedFrame(received: bytes.count - 1, expected: bytes.count))
        decoder.feed(bytes.suffix(1))
        XCTAssertNotNil(try decoder.nextFrame())
        XCTAssertNoThrow(try decoder.finish())
    }

    func testHeaderErrors() {
        let cases: [([UInt8], ProtocolError)] = [
            (Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), .badMagic(0x4745_5420)),
            (rawFrame(version: 2, type: 16, payload: [0, 0, 0, 0, 0, 0, 0, 1]), .unsupportedVersion(received: 2, supported: 1)),
            (rawFrame(type: 200), .unknownMessageType(200)),
            (rawFrame(type: 18, flags: 0x8000, payload: [0, 0, 0, 0, 0, 0, 0, 1]), .unknownFlags(0x8000)),
            (rawFrame(type: 18, flags: 1, payload: [0, 0, 0, 0, 0, 0, 0, 1] + [UInt8](repeating: 0, count: 32)),
             .unexpectedIntegrityTag(sequence: 0)),
            (rawFrame(type: 18, sequence: 3, payload: [0, 0, 0, 0, 0, 0, 0, 1]), .sequenceOutOfOrder(received: 3, expected: 0)),
        ]
        for (bytes, expected) in cases {
            var decoder = FrameDecoder()
            XCTAssertEqual(protocolError { _ = try frames(from: bytes, decoder: &decoder) }, expected)
        }
    }

    func testOversizedFrameIsRefusedFromItsHeaderAlone() {
        var decoder = FrameDecoder()
        decoder.feed(rawFrame(type: 34, length: UInt32(WireFormat.maximumPayloadLength + 1)))
        let overhead = WireFormat.headerLength + WireFormat.tagLength
        XCTAssertEqual(protocolError { _ = try decoder.nextFrame() },
                       .frameTooLarge(length: WireFormat.maximumPayloadLength + 1 + overhead, limit: WireFormat.maximumFrameLength))
        XCTAssertLessThan(decoder.bufferCapacity, 1024, "nothing was reserved for the refused payload")
        let limit = WireFormat.maximumFrameLength
        XCTAssertEqual(protocolError { _ = try decoder.nextFrame() }?.description,
                       "frame of \(limit + 1) bytes exceeds the limit of \(limit) bytes")
    }

    func testLowerLimitIsHonoured() {
        var decoder = FrameDecoder(maximumPayloadLength: 100)
        decoder.feed(rawFrame(type: 34, length: 101))
        guard case .frameTooLarge? = protocolError({ _ = try decoder.nextFrame() }) else {
            return XCTFail("expected frameTooLarge")
        }
    }

    func testPayloadErrorsNameTheField() throws {
        let writeHeader: [UInt8] = [0, 0] + [0, 0, 0, 0, 0, 0, 0, 5] + [0, 0, 0, 0, 0, 0, 0, 0]
        let badName: [UInt8] = [0, 0] + [0, 0, 0, 0, 0, 0, 0, 1] + [0, 2] + Array("..".utf8)
        let cases: [([UInt8], ProtocolError)] = [
            (rawFrame(type: 34, payload: Array(writeHeader.prefix(12))), .truncatedField("offset", in: .write)),
            (rawFrame(type: 34, payload: writeHeader + [0xFF, 0xFF, 0xFF, 0xFF]),
             .fieldTooLong("data", length: 0xFFFF_FFFF, limit: WireFormat.maximumDataLength, in: .write)),
            (rawFrame(type: 40, payload: badName), .invalidField("name", reason: "name is '.' or '..'", in: .unlink)),
            (rawFrame(type: 16, payload: [0, 0, 0, 0, 0, 0, 0, 1, 9]), .trailingBytes(1, in: .ack)),
            (rawFrame(type: 33, payload: [0, 0] + [UInt8](repeating: 0, count: 8)),
             .invalidField("node", reason: "node id 0 is reserved", in: .forget)),
            (rawFrame(type: 65, payload: [0, 0, 0, 1, 0x61] + [UInt8](repeating: 0, count: 8) + [0, 0, 0, 1] + [0, 1, 0, 0]),
             .truncatedField("digests", in: .regionChecksumsRequest)),
        ]
        for (bytes, expected) in cases {
            var decoder = FrameDecoder()
            let frame = try XCTUnwrap(try frames(from: bytes, decoder: &decoder).first)
            XCTAssertEqual(protocolError { _ = try Message(decoding: frame) }, expected)
        }
    }

    func testFirstErrorIsFinal() {
        var decoder = FrameDecoder()
        decoder.feed(rawFrame(type: 200))
        XCTAssertEqual(protocolError { _ = try decoder.nextFrame() }, .unknownMessageType(200))
        decoder.feed(try! FrameEncoder().encodeCopy(.ping(token: 1)))
        XCTAssertEqual(protocolError { _ = try decoder.nextFrame() }, .unknownMessageType(200))
        XCTAssertEqual(protocolError { try decoder.finish() }, .unknownMessageType(200))
    }

    func testErrorsReadAsOneLine() {
        let errors: [ProtocolError] = [
            .badMagic(1), .unsupportedVersion(received: 2, supported: 1), .unknownMessageType(9), .unknownFlags(4),
            .frameTooLarge(length: 10, limit: 5), .truncatedFrame(received: 1, expected: 2),
            .truncatedField("x", in: .write), .fieldTooLong("x", length: 2, limit: 1, in: .write),
            .invalidField("x", reason: "y", in: .write), .trailingBytes(1, in: .ack),
            .missingIntegrityTag(sequence: 1), .unexpectedIntegrityTag(sequence: 0), .badIntegrityTag(sequence: 1),
            .sequenceOutOfOrder(received: 1, expected: 2),
        ]
        for error in errors {
            XCTAssertFalse(error.description.isEmpty)
            XCTAssertFalse(error.description.contains("\n"))
        }
        XCTAssertEqual(ProtocolError.unsupportedVersion(received: 3, supported: 1).description,
                       "unsupported protocol version 3 (we speak 1)")
    }

    func testBufferHoldsAtMostOneFrameWhileALargeFrameArrives() throws {
        var encoder = FrameEncoder()
        let large = try encoder.encode(.write(Write(module: 0, node: NodeRef(2), offset: 0,
                                                    data: ArraySlice(repeating: 7, count: WireFormat.maximumDataLength)))).bytes
        let small = try encoder.encode(.ping(token: 1)).bytes
        let stream = small + large + small
        var decoder = FrameDecoder()
        var count = 0
        var start = 0
        let chunk = 64 << 10
        while start < stream.count {
            decoder.feed(stream[start..<min(stream.count, start + chunk)])
            start += chunk
            XCTAssertLessThanOrEqual(decoder.bufferCapacity, WireFormat.maximumFrameLength + chunk)
            while try decoder.nextFrame() != nil { count += 1 }
        }
        XCTAssertEqual(count, 3)
    }
}

extension FrameEncoder {
    /// The bytes of `message`'s frame, from a copy of this encoder (tests only).
    func encodeCopy(_ message: Message) throws -> [UInt8] {
        var copy = self
        return try copy.encode(message).bytes
    }
}
