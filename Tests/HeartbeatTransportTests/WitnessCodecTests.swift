@testable import HeartbeatTransport
import MirrorCore
import TestSupport
import XCTest

/// Witness messages: every body survives the trip; only intact datagrams under the witness key pass.
final class WitnessCodecTests: XCTestCase {
    private let codec = WitnessCodec(presharedKey: testKey)

    private var messages: [WitnessMessage] {
        let data = DataGenerations(current: GenerationID(3), bitmap: GenerationID(2), history: [GenerationID(1)], upToDate: true)
        let stamp = TickStamp(incarnation: .max, tick: -4)
        let bodies: [WitnessMessage.Body] = [
            .request(WitnessRequest(kind: .serve, node: "node1", stamp: stamp, servingGeneration: GenerationID(4), data: data, forced: true)),
            .request(WitnessRequest(kind: .release, node: "node1", stamp: TickStamp(incarnation: 1, tick: Int.max),
                                    servingGeneration: GenerationID(.max), data: .justCreated, forced: false)),
            .verdict(WitnessVerdict(mayServe: true, request: stamp, servingGeneration: GenerationID(4))),
            .verdict(WitnessVerdict(mayServe: false, request: stamp, servingGeneration: GenerationID(0))),
            .challenge,
            .released(stamp),
        ]
        return bodies.enumerated().map { index, body in
            WitnessMessage(nonce: UInt64(index) &* 0x9E37_79B9_7F4A_7C15, challenge: index == 0 ? 0 : .max - UInt64(index),
                           cluster: "demo", module: "AM-\(index)", node: "node1", body: body)
        }
    }

    func testEveryMessageRoundTrips() throws {
        for message in messages {
            XCTAssertEqual(try codec.decode(codec.encode(message)[...]).get(), message)
        }
    }

    func testChangedTruncatedForeignAndRandomBytesAreRefused() throws {
        for message in messages {
            let bytes = try codec.encode(message)
            for index in bytes.indices {
                var changed = bytes
                changed[index] ^= 0x01
                guard case .failure = codec.decode(changed[...]) else { return XCTFail("byte \(index) changed and accepted") }
            }
            for length in 0..<bytes.count {
                guard case .failure = codec.decode(bytes.prefix(length)) else { return XCTFail("\(length) bytes accepted") }
            }
        }
        // The heartbeat key does not sign witness messages.
        var writer = WireWriter()
        writer.append(raw: try codec.encode(messages[0]).dropLast(DatagramTag.size))
        DatagramTag.append(to: &writer, key: ClusterKeys.heartbeat(presharedKey: testKey))
        XCTAssertEqual(codec.decode(writer.bytes[...]), .failure(.unauthenticated))
        // Nor does a heartbeat datagram pass as a witness message, or the reverse.
        let heartbeat = try HeartbeatCodec(presharedKey: testKey).encode(
            HeartbeatDatagram(path: 0, incarnation: 1, sequence: 1, cluster: "demo", sender: "node1", modules: []))
        XCTAssertEqual(codec.decode(heartbeat[...]), .failure(.notAWitnessMessage))
        XCTAssertEqual(HeartbeatCodec(presharedKey: testKey).decode(try codec.encode(messages[4])[...]), .failure(.notAHeartbeat))
        var random = SeededGenerator(seed: 11)
        for _ in 0..<2000 {
            var bytes = random.bytes(random.int(in: 0...200))
            if random.chance(0.5), bytes.count >= 4 { bytes.replaceSubrange(0..<4, with: Array("MWT".utf8) + [1]) }
            guard case .failure = codec.decode(bytes[...]) else { return XCTFail("random bytes accepted") }
        }
    }

    func testAuthenticatedButMalformedIsRefused() throws {
        let key = ClusterKeys.witness(presharedKey: testKey)
        let body = Array(try codec.encode(messages[4]).dropLast(DatagramTag.size))
        func signed(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
            var writer = WireWriter()
            writer.append(raw: bytes)
            DatagramTag.append(to: &writer, key: key)
            return writer.bytes[...]
        }
        XCTAssertEqual(try codec.decode(signed(body)).get(), messages[4])
        var unknownType = body
        unknownType[4] = 9
        XCTAssertEqual(codec.decode(signed(unknownType)), .failure(.malformed("invalid type: unknown message type 9")))
        XCTAssertEqual(codec.decode(signed(body + [0])), .failure(.malformed("1 unexpected bytes after the message")))
    }
}
