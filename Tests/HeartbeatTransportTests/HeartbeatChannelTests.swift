@testable import HeartbeatTransport
import Logging
import MirrorCore
import ReplTransport
import TestSupport
import XCTest

/// Two channels on real UDP sockets: path 0 on 127.0.0.1, path 1 on 127.0.0.2.
final class HeartbeatChannelTests: XCTestCase {
    private struct Pair {
        let node1: HeartbeatConfiguration
        let node2: HeartbeatConfiguration
    }

    private func pair(paths: Int = 2, modules: Set<String>? = ["AM", "DB"]) throws -> Pair {
        var node1Paths: [HeartbeatPath] = [], node2Paths: [HeartbeatPath] = []
        for index in 0..<paths {
            let host = "127.0.0.\(index + 1)"
            let a = NetworkAddress(host: host, port: try freePort(on: host, type: SOCK_DGRAM))
            let b = NetworkAddress(host: host, port: try freePort(on: host, type: SOCK_DGRAM))
            node1Paths.append(HeartbeatPath(local: a, peer: b))
            node2Paths.append(HeartbeatPath(local: b, peer: a))
        }
        func configuration(_ node: String, _ peer: String, _ paths: [HeartbeatPath]) -> HeartbeatConfiguration {
            HeartbeatConfiguration(clusterName: "demo", nodeName: node, peerName: peer, paths: paths, presharedKey: testKey,
                                   modules: modules, timeout: .milliseconds(600), dropLogInterval: .seconds(10))
        }
        return Pair(node1: configuration("node1", "node2", node1Paths), node2: configuration("node2", "node1", node2Paths))
    }

    func testTwoNodesExchangeHeartbeatsOnBothPaths() throws {
        let pair = try pair()
        let inbox1 = Inbox(), inbox2 = Inbox(), log = CapturedLog()
        let node1 = try HeartbeatChannel(configuration: pair.node1, logger: log.logger("node1"), onHeartbeat: inbox1.add)
        let node2 = try HeartbeatChannel(configuration: pair.node2, logger: log.logger("node2"), onHeartbeat: inbox2.add)
        defer { node1.close(); node2.close() }

        let am = sampleHeartbeat(from: "node1", tick: 1, state: .prim)
        let db = sampleHeartbeat(from: "node1", tick: 1, state: .alone, echo: TickStamp(incarnation: 5, tick: 3))
        node1.send(["AM": am, "DB": db])
        XCTAssertTrue(eventually { node2.status().allSatisfy { $0.datagramsReceived == 1 } }, "\(node2.status())")
        XCTAssertEqual(Set(inbox2.entries.map(\.module)), ["AM", "DB"])
        XCTAssertEqual(inbox2.entries.count, 2, "each heartbeat once, though it came on two paths")
        XCTAssertEqual(inbox2.entries.first { $0.module == "AM" }?.heartbeat, am)
        XCTAssertEqual(inbox2.entries.first { $0.module == "DB" }?.heartbeat, db)
        XCTAssertEqual(node2.statistics.delivered, 1)
        XCTAssertEqual(node2.statistics.duplicates, 1)
        XCTAssertTrue(node2.status().allSatisfy { $0.alive && $0.lastReceived != nil })
        XCTAssertTrue(node1.status().allSatisfy { $0.datagramsSent == 1 && $0.lastSendError == nil })

        let reply = sampleHeartbeat(from: "node2", tick: 8, state: .second, echo: am.stamp)
        node2.send(reply, module: "AM")
        XCTAssertTrue(eventually { inbox1.entries.count == 1 })
        XCTAssertEqual(inbox1.entries.first, Inbox.Entry(heartbeat: reply, module: "AM", path: inbox1.entries.first?.path ?? -1))
        XCTAssertTrue(log.contains("heartbeat path 1 (127.0.0.2:"), log.lines.joined(separator: "\n"))
    }

    /// One path carries nothing (the sender has a wrong peer port on it, as a dead link): the
    /// other path alone keeps every heartbeat coming, and the status tells which path is down.
    func testOneLivePathKeepsTheHeartbeatsComing() throws {
        for blocked in 0..<2 {
            var pair = try pair()
            var node1 = pair.node1
            node1.paths[blocked].peer.port = try freePort(on: node1.paths[blocked].peer.host, type: SOCK_DGRAM)
            pair = Pair(node1: node1, node2: pair.node2)
            let inbox = Inbox(), log = CapturedLog()
            let sender = try HeartbeatChannel(configuration: pair.node1, logger: log.logger("node1"), onHeartbeat: { _, _, _ in })
            let receiver = try HeartbeatChannel(configuration: pair.node2, logger: log.logger("node2"), onHeartbeat: inbox.add)
            for tick in 1...5 { sender.send(sampleHeartbeat(from: "node1", tick: tick), module: "AM") }
            XCTAssertTrue(eventually { inbox.entries.count == 5 }, "blocked path \(blocked): \(inbox.entries.count)")
            XCTAssertEqual(Set(inbox.entries.map(\.path)), [1 - blocked])
            XCTAssertEqual(inbox.entries.map(\.heartbeat.stamp.tick), [1, 2, 3, 4, 5])
            let status = receiver.status()
            XCTAssertTrue(status[1 - blocked].alive)
            XCTAssertFalse(status[blocked].alive)
            XCTAssertNil(status[blocked].lastReceived)
            // The path that worked goes silent: the channel says so once the timeout passed.
            sender.close()
            XCTAssertTrue(eventually { log.contains("heartbeat path \(1 - blocked) (") && log.contains("nothing from node \"node1\"") },
                          log.lines.joined(separator: "\n"))
            XCTAssertFalse(receiver.status()[1 - blocked].alive)
            receiver.close()
        }
    }

    /// A node restarts: its new incarnation is accepted at once, with a log line.
    func testARestartedPeerIsHeardAgain() throws {
        let pair = try pair(paths: 1)
        let inbox = Inbox(), log = CapturedLog()
        let receiver = try HeartbeatChannel(configuration: pair.node2, logger: log.logger("node2"), onHeartbeat: inbox.add)
        defer { receiver.close() }
        var first: HeartbeatChannel? = try HeartbeatChannel(configuration: pair.node1, logger: log.logger("node1"), onHeartbeat: { _, _, _ in })
        first?.send(sampleHeartbeat(from: "node1", tick: 1), module: "AM")
        XCTAssertTrue(eventually { inbox.entries.count == 1 })
        first?.close()
        first = nil
        let second = try HeartbeatChannel(configuration: pair.node1, logger: log.logger("node1"), onHeartbeat: { _, _, _ in })
        defer { second.close() }
        second.send(sampleHeartbeat(from: "node1", tick: 0), module: "AM")
        XCTAssertTrue(eventually { inbox.entries.count == 2 })
        XCTAssertTrue(log.contains("has a new incarnation"), log.lines.joined(separator: "\n"))
    }

    /// Garbage, another key, another cluster, a stranger, ourselves, truncated, oversized, the wrong
    /// path, replays and an older incarnation: each dropped with its own warning; the channel goes on.
    func testHostileDatagramsAreDroppedAndLoggedAndTheChannelGoesOn() throws {
        let pair = try pair()
        let inbox = Inbox(), log = CapturedLog()
        let receiver = try HeartbeatChannel(configuration: pair.node2, logger: log.logger("node2"), onHeartbeat: inbox.add)
        defer { receiver.close() }
        let target = pair.node2.paths[0].local
        let raw = try RawSender()
        let codec = HeartbeatCodec(presharedKey: testKey)
        let incarnation = Incarnation.next()
        func datagram(cluster: String = "demo", sender: String = "node1", path: UInt8 = 0, incarnation: UInt64 = incarnation,
                      sequence: UInt64, module: String = "AM") throws -> [UInt8] {
            try codec.encode(HeartbeatDatagram(path: path, incarnation: incarnation, sequence: sequence, cluster: cluster, sender: sender,
                                               modules: [ModuleHeartbeat(module: module, heartbeat: sampleHeartbeat(from: sender, tick: Int(sequence)))]))
        }
        let genuine = try datagram(sequence: 10)
        let hostile: [(String, [UInt8])] = [
            ("not-a-heartbeat", Array("GET / HTTP/1.0\r\n\r\n".utf8) + [UInt8](repeating: 0, count: 60)),
            ("unauthenticated", try HeartbeatCodec(presharedKey: Array("a different key, also thirty-two bytes long".utf8))
                .encode(HeartbeatDatagram(path: 0, incarnation: 1, sequence: 1, cluster: "demo", sender: "node1", modules: []))),
            ("wrong-cluster", try datagram(cluster: "other", sequence: 1)),
            ("unknown-node", try datagram(sender: "node3", sequence: 1)),
            ("from-this-node", try datagram(sender: "node2", sequence: 1)),
            ("truncated", Array(genuine.prefix(20))),
            ("unauthenticated", Array(genuine.dropLast())),
            ("oversized", [UInt8](repeating: 0x41, count: 3000)),
            ("wrong-path", try datagram(path: 1, sequence: 11)),
        ]
        for (_, bytes) in hostile { raw.send(bytes, to: target) }
        raw.send(genuine, to: target)
        XCTAssertTrue(eventually { inbox.entries.count == 1 })
        raw.send(genuine, to: target)
        raw.send(try datagram(sequence: 9), to: target)
        raw.send(try datagram(incarnation: incarnation - 1, sequence: 500), to: target)
        raw.send(try datagram(sequence: 12, module: "XX"), to: target)

        var expected: [String: Int] = [:]
        for (category, _) in hostile { expected[category, default: 0] += 1 }
        expected["replayed"] = 2
        expected["older-incarnation"] = 1
        expected["unknown-module"] = 1
        XCTAssertTrue(eventually { receiver.statistics.dropped == expected }, "\(receiver.statistics.dropped)")
        XCTAssertEqual(inbox.entries.map(\.heartbeat.stamp.tick), [10])

        let lines = log.lines.joined(separator: "\n")
        for text in ["not a mirror heartbeat", "not authenticated by the cluster key", "a different key_file",
                     "from cluster \"other\"", "from node \"node3\", which is not this node's peer",
                     "from node \"node2\", this node itself", "truncated: 20 bytes", "oversized: 3000 bytes", "sent on path 1 but received on path 0",
                     "replayed or reordered", "older than the current", "module \"XX\" is not in this node's cluster file"] {
            XCTAssertTrue(lines.contains(text), "no line with \(text):\n\(lines)")
        }
        XCTAssertTrue(lines.contains("(and 1 more like it") == false, "the second replay within 10 s is counted, not logged")
        XCTAssertEqual(log.lines.filter { $0.contains("replayed or reordered") }.count, 1)

        // Still working, on both paths, with a real sender.
        let sender = try HeartbeatChannel(configuration: pair.node1, logger: log.logger("node1"), onHeartbeat: { _, _, _ in })
        defer { sender.close() }
        sender.send(sampleHeartbeat(from: "node1", tick: 77), module: "DB")
        XCTAssertTrue(eventually { inbox.entries.last?.heartbeat.stamp.tick == 77 })
        XCTAssertTrue(eventually { receiver.status().allSatisfy(\.alive) })
    }

    func testManyModulesAreSplitIntoDatagramsThatFit() throws {
        let names = (0..<60).map { "module-with-a-rather-long-name-\($0)" }
        let pair = try pair(paths: 1, modules: Set(names))
        let inbox = Inbox(), log = CapturedLog()
        let node1 = try HeartbeatChannel(configuration: pair.node1, logger: log.logger("node1"), onHeartbeat: { _, _, _ in })
        let node2 = try HeartbeatChannel(configuration: pair.node2, logger: log.logger("node2"), onHeartbeat: inbox.add)
        defer { node1.close(); node2.close() }
        var heartbeats: [String: Heartbeat] = [:]
        for name in names { heartbeats[name] = sampleHeartbeat(from: "node1", tick: 3, echo: TickStamp(incarnation: 1, tick: 2)) }
        node1.send(heartbeats)
        XCTAssertTrue(eventually { inbox.entries.count == 60 }, "\(inbox.entries.count)")
        XCTAssertEqual(Set(inbox.entries.map(\.module)), Set(names))
        XCTAssertGreaterThan(node1.status()[0].datagramsSent, 1)
        XCTAssertEqual(node2.statistics.dropped, [:])
    }

    func testAHeartbeatFromAnotherNodeIsNotSentAndABusyAddressFails() throws {
        let pair = try pair(paths: 1)
        let log = CapturedLog()
        let node1 = try HeartbeatChannel(configuration: pair.node1, logger: log.logger("node1"), onHeartbeat: { _, _, _ in })
        defer { node1.close() }
        node1.send(sampleHeartbeat(from: "node2", tick: 1), module: "AM")
        XCTAssertTrue(log.contains("heartbeat for module AM not sent: it is from \"node2\""))
        XCTAssertThrowsError(try HeartbeatChannel(configuration: pair.node1, logger: log.logger("again"), onHeartbeat: { _, _, _ in })) {
            XCTAssertTrue("\($0)".contains("Address already in use"), "\($0)")
        }
        node1.close()
        node1.close()
        node1.send(sampleHeartbeat(from: "node1", tick: 2), module: "AM")
    }
}
