import ReplProtocol
import XCTest
@testable import ReplTransport
import TestSupport

/// Hostile bytes from raw sockets, before and after the handshake: each connection is refused
/// with one log line, and the listener and a good peer carry on.
final class FuzzTests: XCTestCase {
    /// One connection's worth of bad bytes, of the kind chosen by the seed.
    private func hostileBytes(_ generator: inout SeededGenerator, hello: [UInt8]) -> [UInt8] {
        switch Int.random(in: 0..<5, using: &generator) {
        case 0: // noise
            return generator.bytes(Int.random(in: 0...300, using: &generator))
        case 1: // a hello cut short
            return Array(hello.prefix(Int.random(in: 0..<hello.count, using: &generator)))
        case 2: // a hello with one byte changed
            var bytes = hello
            bytes[Int.random(in: 0..<bytes.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
            return bytes
        case 3: // a header announcing an oversized frame
            var bytes = Array(hello.prefix(WireFormat.headerLength))
            let length = UInt32.random(in: UInt32(WireFormat.maximumPayloadLength + 1)...UInt32.max, using: &generator)
            bytes.replaceSubrange(8..<12, with: withUnsafeBytes(of: length.bigEndian, Array.init))
            return bytes + generator.bytes(100)
        default: // a good hello followed by garbage instead of a proof
            return hello + generator.bytes(Int.random(in: 1...200, using: &generator))
        }
    }

    func testHostileConnectionsAreEachLoggedAndAGoodPeerStillConnects() throws {
        let listener = try TestListener(handshakeTimeout: .seconds(2))
        var generator = SeededGenerator(seed: 2026)
        let connections = 300
        for _ in 0..<connections {
            let (_, hello) = Handshake.initiator(configuration: node1, nonce: .random())
            _ = try RawClient.exchange(hostileBytes(&generator, hello: hello), with: listener.address)
        }
        let lines = listener.log.waitForLines(connections, at: .warning)
        XCTAssertEqual(lines.count, connections)
        for line in lines { XCTAssertTrue(line.hasPrefix("replication connection from 127.0.0.1:"), line) }
        XCTAssertEqual(listener.log.lines(at: .info).count, 1, "only the 'listening' line: nobody got through")

        let sender = ReplicationSender(channel: try listener.connector(log: CapturedLog()).connect(),
                                       logger: CapturedLog().logger)
        defer { sender.close() }
        _ = ReceivingPeer(channel: try XCTUnwrap(listener.nextChannel()))
        XCTAssertEqual(sender.wait(for: try sender.send(.ping(token: 1))), .applied)
    }

    func testGarbageAfterTheHandshakeBreaksOnlyThatStream() throws {
        let listener = try TestListener()
        var generator = SeededGenerator(seed: 7)
        for round in 0..<20 {
            let primary = try listener.connector(log: CapturedLog()).connect()
            let peer = ReceivingPeer(channel: try XCTUnwrap(listener.nextChannel()))
            try primary.socket.send(generator.bytes(Int.random(in: 20...2000, using: &generator)))
            primary.close()
            guard case .failure(let error) = try XCTUnwrap(peer.waitForEnd(), "round \(round)") else {
                return XCTFail("round \(round): garbage accepted")
            }
            guard case TransportError.protocolViolation = error else { return XCTFail("round \(round): \(error)") }
            let line = try XCTUnwrap(peer.log.lines(at: .warning).first)
            XCTAssertTrue(line.hasPrefix("replication from node 'node1' at 127.0.0.1:"), line)
            XCTAssertTrue(line.contains("broken: protocol violation: "), line)
        }
        XCTAssertNotNil(try? listener.connector(log: CapturedLog()).connect())
    }
}
