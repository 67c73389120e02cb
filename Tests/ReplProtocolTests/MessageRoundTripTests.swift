import XCTest
@testable import ReplProtocol

/// Every message survives encoding and decoding unchanged, in plain and authenticated frames.
final class MessageRoundTripTests: XCTestCase {
    func testSamplesCoverEveryMessageType() {
        let covered = Set(sampleMessages().map(\.type))
        XCTAssertEqual(covered, Set(MessageType.allCases))
    }

    func testEveryMessageRoundTripsInPlainFrames() throws {
        var encoder = FrameEncoder()
        var decoder = FrameDecoder()
        for message in sampleMessages() {
            let encoded = try encoder.encode(message)
            XCTAssertEqual(encoded.sequence, 0)
            let decoded = try frames(from: encoded.bytes, decoder: &decoder)
            XCTAssertEqual(decoded.count, 1)
            XCTAssertEqual(decoded.first?.type, message.type)
            XCTAssertEqual(try decoded.first.map(Message.init(decoding:)), message)
        }
    }

    func testEveryMessageRoundTripsInAuthenticatedFrames() throws {
        let keys = try XCTUnwrap(HandshakeRun().initiator.keys)
        var encoder = FrameEncoder(sendingKey: keys.sending)
        var decoder = FrameDecoder()
        decoder.requireAuthentication(with: keys.sending)
        for (index, message) in sampleMessages().enumerated() {
            let encoded = try encoder.encode(message)
            XCTAssertEqual(encoded.sequence, UInt64(index + 1))
            let frame = try XCTUnwrap(try frames(from: encoded.bytes, decoder: &decoder).first)
            XCTAssertTrue(frame.flags.contains(.authenticated))
            XCTAssertEqual(frame.sequence, encoded.sequence)
            XCTAssertEqual(try Message(decoding: frame), message)
        }
    }

    func testWriteFromARawBufferEqualsWriteMessage() throws {
        let data: [UInt8] = Array(0..<200)
        var encoder = FrameEncoder()
        let fromBuffer = try data.withUnsafeBytes {
            try encoder.encodeWrite(module: 3, node: NodeRef(9), offset: 77, data: $0)
        }
        let fromMessage = try encoder.encode(.write(Write(module: 3, node: NodeRef(9), offset: 77, data: data[...])))
        XCTAssertEqual(fromBuffer.bytes, fromMessage.bytes)
    }

    func testDecodedWriteDataIsASliceOfTheReceivedBuffer() throws {
        var encoder = FrameEncoder()
        let sent = Write(module: 0, node: NodeRef(5), offset: 0, data: ArraySlice(repeating: 1, count: 4096))
        let bytes = try encoder.encode(.write(sent)).bytes
        var decoder = FrameDecoder()
        let frame = try XCTUnwrap(try frames(from: bytes, decoder: &decoder).first)
        guard case .write(let received) = try Message(decoding: frame) else { return XCTFail("not a write") }
        let payloadEnd = frame.payload.withUnsafeBufferPointer { $0.baseAddress! + $0.count }
        let dataEnd = received.data.withUnsafeBufferPointer { $0.baseAddress! + $0.count }
        XCTAssertEqual(payloadEnd, dataEnd, "the write's data shares the frame's storage")
    }

    func testOversizedWriteIsRefusedByTheEncoder() {
        var encoder = FrameEncoder()
        let tooBig = Write(module: 0, node: NodeRef(5), offset: 0,
                           data: ArraySlice(repeating: 0, count: WireFormat.maximumPayloadLength))
        guard case .frameTooLarge? = protocolError({ _ = try encoder.encode(.write(tooBig)) }) else {
            return XCTFail("expected frameTooLarge")
        }
    }

    func testNamesRefuseWhatCouldEscapeTheirDirectory() {
        for bad in ["", ".", "..", "a/b", "a\u{0}b", String(repeating: "x", count: 256)] {
            XCTAssertNil(FileName(bad), bad)
        }
        XCTAssertNotNil(FileName(bytes: [0xFF, 0x80]), "Linux names need not be UTF-8")
        XCTAssertNotNil(FileName(String(repeating: "x", count: 255)))
        for bad in ["", "/etc/passwd", "a//b", "a/../b", "a/", "./a"] {
            XCTAssertNil(RelativePath(bad), bad)
        }
        XCTAssertNotNil(RelativePath("db/base/1234"))
        XCTAssertNil(SymlinkTarget(""))
        XCTAssertNotNil(SymlinkTarget("/absolute/is/fine"))
        XCTAssertNil(XattrName(""))
    }

    func testContentDigestMatchesSHA256() {
        let digest = ContentDigest(hashing: Array("abc".utf8))
        let expected = ContentDigest(bytes: [
            0xBA, 0x78, 0x16, 0xBF, 0x8F, 0x01, 0xCF, 0xEA, 0x41, 0x41, 0x40, 0xDE, 0x5D, 0xAE, 0x22, 0x23,
            0xB0, 0x03, 0x61, 0xA3, 0x96, 0x17, 0x7A, 0x9C, 0xB4, 0x10, 0xFF, 0x61, 0xF2, 0x00, 0x15, 0xAD,
        ])
        XCTAssertEqual(digest, expected)
        XCTAssertNil(ContentDigest(bytes: [1, 2, 3]))
    }
}
