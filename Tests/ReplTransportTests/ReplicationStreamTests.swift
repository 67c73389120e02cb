import Glibc
import ReplProtocol
import XCTest
@testable import ReplTransport

/// Sender and receiver on a real loopback connection: pipelining, order, nacks, loss, timeouts.
final class ReplicationStreamTests: XCTestCase {
    private func write(node: UInt64, offset: UInt64) -> Message {
        .write(Write(module: 0, node: NodeRef(node), offset: offset, data: [1, 2, 3, 4]))
    }

    func testEightThreadsPipeliningAThousandMessagesEachAreAllAppliedInOrder() throws {
        let (primary, secondary) = try connectedPair()
        let peer = ReceivingPeer(channel: secondary)
        let sender = ReplicationSender(channel: primary, logger: CapturedLog().logger)
        defer { sender.close() }
        let payload = [UInt8](repeating: 0xAB, count: 4096)
        let outcomes = OutcomeTable()
        let started = ContinuousClock.now
        onThreads(8) { thread in
            // Windows of 100 messages in flight per thread, each waited for afterwards.
            for window in stride(from: 0, to: 1000, by: 100) {
                let tickets = (window..<window + 100).map { index in
                    payload.withUnsafeBytes {
                        try! sender.sendWrite(module: 0, node: NodeRef(UInt64(thread + 2)), offset: UInt64(index), data: $0)
                    }
                }
                for ticket in tickets { outcomes.record(sender.wait(for: ticket)) }
            }
        }
        let elapsed = ContinuousClock.now - started
        print("pipelined 8000 writes of 4 KiB in \(elapsed): \(Int(8000 / elapsed.seconds)) messages/s")
        XCTAssertEqual(outcomes.counts, [.applied: 8000])
        let applied = peer.applied
        XCTAssertEqual(applied.count, 8000)
        XCTAssertEqual(applied.map(\.sequence), applied.map(\.sequence).sorted(), "stream order")
        var offsetsByNode: [UInt64: [UInt64]] = [:]
        for case (_, .write(let write)) in applied { offsetsByNode[write.node.id, default: []].append(write.offset) }
        XCTAssertEqual(offsetsByNode.count, 8)
        for (node, offsets) in offsetsByNode { XCTAssertEqual(offsets, Array(0..<1000), "per-thread order of node \(node)") }
    }

    func testNackCarriesTheErrnoToTheWaiterOfThatMessageOnly() throws {
        let (primary, secondary) = try connectedPair()
        _ = ReceivingPeer(channel: secondary) { _, message in
            guard case .write(let write) = message, write.offset % 7 == 3 else { return .applied }
            return .failed(errno: Int32(write.node.id))
        }
        let sender = ReplicationSender(channel: primary, logger: CapturedLog().logger)
        defer { sender.close() }
        let mismatches = OutcomeTable()
        onThreads(4) { thread in
            let node = UInt64(20 + thread)
            let tickets = (0..<200 as Range<UInt64>).map { (offset: $0, ticket: try! sender.send(self.write(node: node, offset: $0))) }
            for (offset, ticket) in tickets {
                let expected: DeliveryOutcome = offset % 7 == 3 ? .failed(errno: Int32(node)) : .applied
                if sender.wait(for: ticket) != expected { mismatches.record(.peerLost) }
            }
        }
        XCTAssertEqual(mismatches.counts, [:])
        XCTAssertTrue(sender.isConnected, "a nack does not end the stream")
    }

    func testFsyncIsAcknowledgedOnlyAfterApplyReturned() throws {
        let (primary, secondary) = try connectedPair()
        let synced = Flag()
        let peer = ReceivingPeer(channel: secondary) { _, message in
            guard case .fsync = message else { return .applied }
            Pause.sleep(for: .milliseconds(100))
            synced.set()
            return .applied
        }
        let sender = ReplicationSender(channel: primary, logger: CapturedLog().logger)
        let written = try sender.send(write(node: 2, offset: 0))
        let fsync = try sender.send(.fsync(Fsync(module: 0, node: NodeRef(2), dataOnly: false)))
        XCTAssertEqual(sender.wait(for: written), .applied)
        XCTAssertEqual(sender.wait(for: fsync), .applied)
        XCTAssertTrue(synced.isSet)
        sender.close()
        guard case .success = try XCTUnwrap(peer.waitForEnd()) else { return XCTFail("receiver failed") }
        XCTAssertEqual(peer.log.lines(at: .info).last, "replication from \(secondary.peerDescription) ended: closed by the peer")
    }

    func testStoppedPeerMakesEveryWaiterReportPeerLostPromptly() throws {
        let (primary, secondary) = try connectedPair()
        let gate = Gate()
        let peer = ReceivingPeer(channel: secondary) { sequence, _ in
            if sequence > 50 { gate.pass() }
            return .applied
        }
        defer { gate.open() }
        let log = CapturedLog()
        let sender = ReplicationSender(channel: primary, settings: .init(acknowledgementTimeout: .seconds(20)),
                                       logger: log.logger)
        let outcomes = OutcomeTable()
        let stopper = Flag()
        let started = ContinuousClock.now
        onThreads(8) { thread in
            let tickets = (0..<100 as Range<UInt64>).map { try! sender.send(self.write(node: UInt64(thread + 2), offset: $0)) }
            if thread == 0 {
                Pause.sleep(for: .milliseconds(100))
                stopper.set()
                peer.receiver.stop()
            }
            for ticket in tickets { outcomes.record(sender.wait(for: ticket)) }
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2), "loss is noticed at once, not after the timeout")
        XCTAssertTrue(stopper.isSet)
        let counts = outcomes.counts
        XCTAssertEqual(counts[.applied, default: 0] + counts[.peerLost, default: 0], 800)
        XCTAssertGreaterThan(counts[.peerLost, default: 0], 0)
        XCTAssertFalse(sender.isConnected)
        XCTAssertEqual(sender.wait(for: try sender.send(write(node: 2, offset: 0))), .peerLost, "sends after the loss")
        XCTAssertEqual(log.lines(at: .warning), ["replication to \(primary.peerDescription) lost: the peer closed the connection"])
    }

    func testPeerThatStopsAcknowledgingIsLostAfterTheTimeout() throws {
        let (primary, secondary) = try connectedPair()
        let gate = Gate()
        defer { gate.open() }
        _ = ReceivingPeer(channel: secondary) { _, _ in gate.pass(); return .applied }
        let sender = ReplicationSender(channel: primary, settings: .init(acknowledgementTimeout: .milliseconds(400)),
                                       logger: CapturedLog().logger)
        let ticket = try sender.send(write(node: 2, offset: 0))
        let started = ContinuousClock.now
        XCTAssertEqual(sender.wait(for: ticket), .peerLost)
        let waited = ContinuousClock.now - started
        XCTAssertGreaterThan(waited, .milliseconds(300))
        XCTAssertLessThan(waited, .milliseconds(1500))
        // The frame named is ours, or the ping the sender's pinger sent just before or after it
        // (whichever deadline the checker saw first): nothing else was on the stream.
        let reason = sender.lossReason ?? ""
        XCTAssertTrue((1...ticket.sequence + 1).contains { reason == "no acknowledgement of frame \($0) within 0.4 seconds" }, reason)
    }

    func testSilentPeerIsNoticedByThePingsWithoutAnyWaiter() throws {
        let (primary, secondary) = try connectedPair()
        let gate = Gate()
        defer { gate.open() }
        _ = ReceivingPeer(channel: secondary) { _, _ in gate.pass(); return .applied }
        let sender = ReplicationSender(channel: primary, settings: .init(acknowledgementTimeout: .milliseconds(300),
                                                                         pingInterval: .milliseconds(100)),
                                       logger: CapturedLog().logger)
        _ = try sender.send(write(node: 2, offset: 0))
        let deadline = ContinuousClock.now + .seconds(2)
        while sender.isConnected, ContinuousClock.now < deadline { Pause.sleep(for: .milliseconds(20)) }
        XCTAssertFalse(sender.isConnected)
        XCTAssertTrue(sender.lossReason?.hasPrefix("no acknowledgement of frame") ?? false, "\(sender.lossReason ?? "")")
    }

    func testIdleSenderStaysConnectedThroughPings() throws {
        let (primary, secondary) = try connectedPair()
        _ = ReceivingPeer(channel: secondary, settings: .init(idleTimeout: .milliseconds(500)))
        let sender = ReplicationSender(channel: primary, settings: .init(acknowledgementTimeout: .milliseconds(300),
                                                                         pingInterval: .milliseconds(50)),
                                       logger: CapturedLog().logger)
        defer { sender.close() }
        Pause.sleep(for: .seconds(1))
        XCTAssertTrue(sender.isConnected, sender.lossReason ?? "")
        XCTAssertEqual(sender.wait(for: try sender.send(write(node: 2, offset: 0))), .applied)
    }
}

/// Outcomes counted from many threads.
final class OutcomeTable: @unchecked Sendable {
    private let monitor = Monitor()
    private var table: [DeliveryOutcome: Int] = [:]

    func record(_ outcome: DeliveryOutcome) { monitor.locked { table[outcome, default: 0] += 1 } }

    var counts: [DeliveryOutcome: Int] { monitor.locked { table } }
}

/// A boolean set once by one thread and read by another.
final class Flag: @unchecked Sendable {
    private let monitor = Monitor()
    private var value = false

    func set() { monitor.locked { value = true } }

    var isSet: Bool { monitor.locked { value } }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
