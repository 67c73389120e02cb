import Glibc
import Logging
import ReplProtocol
import XCTest
@testable import ReplTransport

/// The handshake on real loopback sockets: a good peer gets a channel; every refusal is one clear
/// log line on each side, and the listener goes on serving.
final class HandshakeOverTCPTests: XCTestCase {
    func testGoodPeerGetsAnAuthenticatedChannelOnBothSides() throws {
        let listener = try TestListener()
        let log = CapturedLog()
        let primary = try listener.connector(log: log).connect()
        let secondary = try XCTUnwrap(listener.nextChannel())
        XCTAssertEqual(primary.peerNodeName, "node2")
        XCTAssertEqual(secondary.peerNodeName, "node1")
        XCTAssertEqual(primary.modules, ["pg", "files"])
        XCTAssertEqual(primary.peerAddress, listener.address.description)
        XCTAssertTrue(secondary.peerAddress.hasPrefix("127.0.0.1:"))
        XCTAssertEqual(log.lines(at: .info), ["replication connection to \(primary.peerDescription) established"])
    }

    func testEveryRefusalIsLoggedOnBothSidesAndTheListenerKeepsServing() throws {
        let listener = try TestListener()
        let cases: [(HandshakeConfiguration, RefusalReason, refusedByListener: Bool)] = [
            (configuration(node: "node1", peers: ["node2"], key: Array(repeating: 7, count: 32)), .wrongKey, true),
            (configuration(cluster: "test", node: "node1", peers: ["node2"]), .wrongCluster, true),
            (configuration(node: "node3", peers: ["node2"]), .unknownNode, true),
            (configuration(node: "node1", peers: ["node2"], modules: ["pg"]), .moduleMismatch, true),
            (configuration(node: "node1", peers: ["node9"]), .unknownNode, false),
        ]
        for (index, (bad, reason, refusedByListener)) in cases.enumerated() {
            let log = CapturedLog()
            XCTAssertThrowsError(try listener.connector(bad, log: log).connect()) { error in
                guard case TransportError.refused(let refusal) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(refusal.reason, reason)
                XCTAssertEqual(refusal.byPeer, refusedByListener)
            }
            let connectorLines = log.lines(at: .warning)
            XCTAssertEqual(connectorLines.count, 1, "\(reason)")
            XCTAssertTrue(connectorLines.first?.contains("to \(listener.address) failed: ") ?? false, "\(connectorLines)")
            XCTAssertTrue(connectorLines.first?.contains(": \(reason): ") ?? false, "\(connectorLines)")
            let listenerLines = listener.log.waitForLines(index + 1, at: .warning)
            XCTAssertEqual(listenerLines.count, index + 1, "\(reason)")
            XCTAssertTrue(listenerLines.last?.hasPrefix("replication connection from 127.0.0.1:") ?? false)
            XCTAssertTrue(listenerLines.last?.contains(": \(reason): ") ?? false, "\(listenerLines)")
        }
        XCTAssertEqual(try listener.connector(log: CapturedLog()).connect().peerNodeName, "node2")
        XCTAssertNotNil(listener.nextChannel())
    }

    func testWrongProtocolVersionIsRefusedWithAnAnswerTheOtherSideCanRead() throws {
        let listener = try TestListener()
        var (_, hello) = Handshake.initiator(configuration: node1, nonce: .random())
        hello[4] = WireFormat.version + 1
        let answer = try RawClient.exchange(hello, with: listener.address)
        var decoder = FrameDecoder()
        decoder.feed(answer)
        let refusal = try XCTUnwrap(try decoder.nextFrame())
        guard case .refuse(let refuse) = try Message(decoding: refusal) else { return XCTFail("\(refusal)") }
        XCTAssertEqual(refuse.reason, .wrongVersion)
        let line = try XCTUnwrap(listener.log.waitForLines(1, at: .warning).first)
        XCTAssertTrue(line.contains("wrong protocol version: unsupported protocol version 2"), line)
        XCTAssertNotNil(try? listener.connector(log: CapturedLog()).connect())
    }

    func testSilentPeerTimesOutAndIsLogged() throws {
        let listener = try TestListener(handshakeTimeout: .milliseconds(200))
        let silent = try Socket.connected(to: listener.address, timeout: .seconds(1))
        let line = try XCTUnwrap(listener.log.waitForLines(1, at: .warning).first)
        XCTAssertTrue(line.contains("timed out: nothing received from 127.0.0.1:"), line)
        withExtendedLifetime(silent) {}
        XCTAssertNotNil(try? listener.connector(log: CapturedLog()).connect())
    }

    func testClosedListenerStopsAccepting() throws {
        let listener = try TestListener()
        listener.listener.close()
        XCTAssertThrowsError(try listener.connector(log: CapturedLog()).connect()) { error in
            XCTAssertEqual(error as? TransportError, .system(call: "connect to \(listener.address)", errno: ECONNREFUSED))
        }
        XCTAssertEqual(listener.log.lines(at: .error), [], "closing is not an accept failure")
    }

    func testConnectorGivesUpInTimeAndFallsBackToTheNextAddress() throws {
        let log = CapturedLog()
        let port = try Socket.listening(on: NetworkAddress(host: "127.0.0.1", port: 0)).localPort // closed again
        let unreachable = ReplicationConnector(addresses: [NetworkAddress(host: "127.0.0.1", port: port)],
                                               configuration: node1, logger: log.logger)
        XCTAssertThrowsError(try unreachable.connect(retryingFor: .milliseconds(300)))
        let listener = try TestListener()
        var connector = ReplicationConnector(addresses: [NetworkAddress(host: "127.0.0.2", port: port), listener.address],
                                             configuration: node1, logger: log.logger)
        connector.initialBackoff = .milliseconds(20)
        XCTAssertEqual(try connector.connect(retryingFor: .seconds(2)).peerNodeName, "node2")
    }
}
