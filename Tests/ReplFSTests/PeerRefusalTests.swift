import Foundation
import Glibc
import Logging
import ReplProtocol
import ReplTransport
import TestSupport
import XCTest

/// Running daemons refuse whoever is not their peer: each bad connection to a secondary's
/// replication port is closed with one log line naming why, the secondary lives on with its data
/// untouched and a real primary still connects and replicates; a primary with the wrong key is
/// refused, says so, and does not mount.
final class PeerRefusalTests: XCTestCase {
    private let quiet = Logger(label: "refusal-tests") { _ in SwiftLogNoOpLogHandler() }

    func testTheSecondaryRefusesBadPeersAndStillServesTheRealPrimary() throws {
        try requireMountPrivileges()
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        try populateBothCopies(cluster)
        try cluster.startSecondary()
        let before = try TreeSnapshot(of: cluster.secondaryDirectory, includingTimes: false)
        let rootBefore = try modificationTime(cluster.secondaryDirectory)

        // (a) to (c): the project's own connector, with the wrong key, cluster, node or modules.
        let cases: [(String, HandshakeConfiguration, RefusalReason)] = [
            ("wrong key", try node1(key: Array(repeating: 0x33, count: 64)), .wrongKey),
            ("wrong cluster", try node1(cluster: "othercluster"), .wrongCluster),
            ("unknown node", try node1(node: "node3"), .unknownNode),
            ("other modules", try node1(modules: ["data", "more"]), .moduleMismatch),
        ]
        for (index, (name, configuration, reason)) in cases.enumerated() {
            let connector = ReplicationConnector(addresses: [NetworkAddress(host: "127.0.0.2", port: cluster.secondaryPort)],
                                                 configuration: configuration, logger: quiet)
            XCTAssertThrowsError(try connector.connect(), name) { error in
                guard case TransportError.refused(let refusal) = error else { return XCTFail("\(name): \(error)") }
                XCTAssertEqual(refusal.reason, reason, name)
                XCTAssertTrue(refusal.byPeer, "\(name): the secondary is the one that refuses")
            }
            let lines = cluster.waitForSecondaryLog("failed: refused the peer: ", count: index + 1)
            XCTAssertEqual(lines.count, index + 1, "\(name): one refusal line per connection:\n\(cluster.secondaryLog)")
            XCTAssertTrue(lines.last?.contains("failed: refused the peer: \(reason): ") ?? false, "\(name): \(lines)")
            XCTAssertTrue(cluster.secondary?.process.isRunning ?? false, "\(name): the secondary died")
        }

        // (d) raw bytes before any handshake.
        var generator = SeededGenerator(seed: 0xBAD_F00D)
        let (_, hello) = Handshake.initiator(configuration: try node1(), nonce: .random())
        var oversized = Array(hello.prefix(WireFormat.headerLength))
        oversized.replaceSubrange(8..<12, with: withUnsafeBytes(of: UInt32(WireFormat.maximumPayloadLength + 1).bigEndian, Array.init))
        var otherVersion = hello
        otherVersion[4] = WireFormat.version + 1
        let beforeHandshake: [(String, [UInt8], String)] = [
            ("noise", generator.bytes(300), "failed: refused the peer: malformed message: bad magic"),
            ("half a hello", Array(hello.prefix(hello.count / 2)), "failed: the peer closed the connection during the handshake"),
            ("oversized frame", oversized + generator.bytes(64), "failed: refused the peer: malformed message: frame of"),
            ("other protocol version", otherVersion, "failed: refused the peer: wrong protocol version"),
            ("garbage instead of a proof", hello + generator.bytes(200), "failed: refused the peer: malformed message: bad magic"),
            ("nothing at all", [], "failed: the peer closed the connection during the handshake"),
        ]
        for (name, bytes, expected) in beforeHandshake {
            let peer = try RawReplicationPeer(host: "127.0.0.2", port: cluster.secondaryPort)
            peer.send(bytes)
            peer.finishSending()
            try expectClosed(name, peer, cluster, logging: expected)
        }

        // (d) a real handshake (the right key), then frames the primary never sends.
        let precious = NodeRef(2)
        let bind = Message.bind(Bind(module: 0, node: precious, parent: .root, name: FileName("precious")!))
        let overwrite = Write(module: 0, node: precious, offset: 0, data: ArraySlice(repeating: 0x58, count: 4096))
        let afterHandshake: [(String, (RawReplicationPeer) throws -> [UInt8], String)] = [
            ("garbage", { _ in generator.bytes(500) }, "broken: protocol violation: bad magic"),
            ("a write with a forged tag", { peer in
                var frame = try peer.encoder.encode(bind).bytes + (try peer.encoder.encode(.write(overwrite)).bytes)
                frame[frame.count - 40] ^= 0x01 // in the write's data
                return frame
            }, "broken: protocol violation: bad integrity tag on frame 2"),
            ("a replayed frame", { peer in
                let ping = try peer.encoder.encode(.ping(token: 7)).bytes
                return ping + ping
            }, "broken: protocol violation: frame sequence 1 out of order (expected 2)"),
            ("a message only the secondary sends", { peer in try peer.encoder.encode(.ack(Ack(sequence: 1))).bytes },
             "broken: protocol violation: unexpected ack message"),
            ("an oversized frame", { peer in
                peer.rawFrame(type: MessageType.write.rawValue, authenticated: true,
                              length: UInt32(WireFormat.maximumPayloadLength + 1), sequence: 1, payload: generator.bytes(100))
            }, "broken: protocol violation: frame of"),
            ("a write cut short", { peer in
                let frames = try peer.encoder.encode(bind).bytes + (try peer.encoder.encode(.write(overwrite)).bytes)
                return Array(frames.dropLast(1000))
            }, "broken: protocol violation: stream ended inside a frame"),
            ("a frame without a tag", { peer in
                peer.rawFrame(type: MessageType.ping.rawValue, authenticated: false, sequence: 1, payload: Array(repeating: 0, count: 8))
            }, "broken: protocol violation: frame 1 has no integrity tag"),
        ]
        for (name, frames, expected) in afterHandshake {
            let peer = try RawReplicationPeer(host: "127.0.0.2", port: cluster.secondaryPort)
            try peer.handshake(try node1())
            peer.send(try frames(peer))
            peer.finishSending()
            try expectClosed(name, peer, cluster, logging: expected)
        }

        // Authenticated frames (valid tags) of every operation type with random payloads: each is
        // refused as malformed, or, if it happens to decode, refused by the applier (a nack: the
        // stream never named a file), and nothing is applied (checked below on the whole copy).
        let operationTypes = MessageType.allCases.filter { $0.rawValue >= MessageType.bind.rawValue }
        for round in 0..<(2 * operationTypes.count) {
            let peer = try RawReplicationPeer(host: "127.0.0.2", port: cluster.secondaryPort)
            try peer.handshake(try node1())
            let type = operationTypes[round % operationTypes.count]
            let payload = generator.bytes(generator.int(in: 0...120))
            peer.send(peer.rawFrame(type: type.rawValue, authenticated: true, sequence: 1, payload: payload))
            let answers = try peer.answers(1, timeout: 2)
            peer.finishSending()
            if case .nack? = answers.first {
                XCTAssertTrue(peer.waitUntilClosed(), "random \(type): the secondary kept the connection after its end")
            } else {
                XCTAssertEqual(answers, [], "random \(type) payload \(payload) was applied")
                try expectClosed("random \(type) payload \(payload)", peer, cluster, logging: "broken: protocol violation: ")
            }
        }

        // A well-formed operation before the primary's status (so on a file the stream never
        // named): refused with a nack, nothing applied.
        let peer = try RawReplicationPeer(host: "127.0.0.2", port: cluster.secondaryPort)
        try peer.handshake(try node1())
        peer.send(try peer.encoder.encode(.write(Write(module: 0, node: NodeRef(99), offset: 0, data: [1, 2, 3]))).bytes)
        let answers = try peer.answers(2)
        guard case .nack(let nack)? = answers.first else { return XCTFail("no nack for a write to an unknown id: \(answers)") }
        XCTAssertEqual(nack.sequence, 1)
        peer.finishSending()
        XCTAssertTrue(peer.waitUntilClosed(), "the secondary kept the connection after its end")
        XCTAssertTrue(cluster.waitForSecondaryLog("could not apply: ").contains { $0.contains("write before the primary's status") },
                      cluster.secondaryLog)

        // The secondary lives on, its copy untouched.
        XCTAssertTrue(cluster.secondary?.process.isRunning ?? false, "the secondary died:\n\(cluster.secondaryLog)")
        XCTAssertTrue(isReplFSMounted(cluster.secondaryDirectory))
        let differences = try TreeSnapshot(of: cluster.secondaryDirectory).differences(from: before)
        XCTAssert(differences.isEmpty, "bad connections changed the secondary's copy:\n" + differences.joined(separator: "\n"))
        XCTAssertEqual(try modificationTime(cluster.secondaryDirectory), rootBefore, "the root directory was changed")
        XCTAssertEqual(try String(contentsOfFile: cluster.secondaryDirectory + "/precious", encoding: .utf8), preciousText)

        try checkTheRealPrimaryReplicates(cluster)
    }

    func testAPrimaryWithTheWrongKeyIsRefusedAndDoesNotServe() throws {
        try requireMountPrivileges()
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        try populateBothCopies(cluster)
        try cluster.startSecondary()
        let before = try TreeSnapshot(of: cluster.secondaryDirectory)
        let wrongKey = try cluster.variantConfig(label: "node1-wrong-key", key: String(repeating: "c3", count: 32))

        let started = Date()
        let primary = try cluster.launchPrimary(config: wrongKey, log: cluster.scratch.path + "/node1-wrong-key.log")
        var everMounted = false
        while primary.process.isRunning && Date().timeIntervalSince(started) < 40 {
            everMounted = everMounted || isReplFSMounted(cluster.primaryDirectory)
            usleep(5_000)
        }
        XCTAssertFalse(primary.process.isRunning, "the refused primary is still running after 40 s:\n\(primary.log)")
        primary.stop()
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertLessThan(elapsed, 10, "a refusal is final: the primary must not retry for its 30 s connect patience")
        XCTAssertEqual(primary.process.terminationStatus, 1, "exit status of the refused primary:\n\(primary.log)")
        XCTAssertFalse(everMounted, "the refused primary mounted its directory")
        XCTAssertFalse(isReplFSMounted(cluster.primaryDirectory))
        XCTAssertTrue(primary.log.contains("failed: refused by the peer: wrong key: "), "primary's log:\n\(primary.log)")
        XCTAssertTrue(primary.log.contains("Error: refused by the peer: wrong key: "), "the refusal as the command's error:\n\(primary.log)")
        XCTAssertFalse(primary.log.contains("mounted"), "primary's log:\n\(primary.log)")
        XCTAssertEqual(cluster.waitForSecondaryLog("failed: refused the peer: wrong key: the proof of node 'node1' does not match").count, 1,
                       "secondary's log:\n\(cluster.secondaryLog)")
        XCTAssertEqual(try String(contentsOfFile: cluster.primaryDirectory + "/precious", encoding: .utf8), preciousText,
                       "the primary's own directory is left as it was")

        XCTAssertTrue(cluster.secondary?.process.isRunning ?? false, "the secondary died:\n\(cluster.secondaryLog)")
        let differences = try TreeSnapshot(of: cluster.secondaryDirectory).differences(from: before)
        XCTAssert(differences.isEmpty, "the refused primary changed the secondary's copy:\n" + differences.joined(separator: "\n"))
        print("the primary with the wrong key exited \(primary.process.terminationStatus) after \(String(format: "%.2f", elapsed)) s")

        try checkTheRealPrimaryReplicates(cluster)
    }

    // MARK: Steps

    private let preciousText = "the secondary's data, the same on both nodes\n"

    /// The same files in both nodes' directories before they start, as after a resync.
    private func populateBothCopies(_ cluster: TwoNodeCluster) throws {
        for directory in [cluster.primaryDirectory, cluster.secondaryDirectory] {
            try preciousText.write(toFile: directory + "/precious", atomically: false, encoding: .utf8)
            try FileManager.default.createDirectory(atPath: directory + "/sub", withIntermediateDirectories: false)
            XCTAssertTrue(FileManager.default.createFile(atPath: directory + "/sub/data", contents: Data(pattern(20_000, seed: 4))))
        }
    }

    /// Node1's handshake identity, with one thing changed.
    private func node1(cluster: String = TwoNodeCluster.clusterName, node: String = "node1",
                       modules: [String] = [TwoNodeCluster.moduleName],
                       key: [UInt8] = Array(TwoNodeCluster.key.utf8)) throws -> HandshakeConfiguration {
        try HandshakeConfiguration(clusterName: cluster, nodeName: node, knownPeers: ["node2"], modules: modules, preSharedKey: key)
    }

    /// The connection of `peer` is closed by the secondary, whose log names it once with `expected`.
    private func expectClosed(_ name: String, _ peer: RawReplicationPeer, _ cluster: TwoNodeCluster, logging expected: String,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(peer.waitUntilClosed(), "\(name): the secondary did not close the connection", file: file, line: line)
        let deadline = Date().addingTimeInterval(10)
        var lines: [String] = []
        while Date() < deadline {
            lines = cluster.secondaryLog.split(separator: "\n").map(String.init)
                .filter { $0.contains(" \(peer.localAddress) failed: ") || $0.contains(" \(peer.localAddress) broken: ") }
            if !lines.isEmpty { break }
            usleep(10_000)
        }
        XCTAssertEqual(lines.count, 1, "\(name): one line for the connection from \(peer.localAddress):\n\(cluster.secondaryLog.suffix(2000))",
                       file: file, line: line)
        XCTAssertTrue(lines.first?.contains(expected) ?? false, "\(name): expected '\(expected)' in \(lines)", file: file, line: line)
        XCTAssertTrue(cluster.secondary?.process.isRunning ?? false, "\(name): the secondary died:\n\(cluster.secondaryLog)",
                      file: file, line: line)
    }

    /// The real primary connects, a write on its mount is on the secondary at once, and after
    /// both stop the two directories are identical.
    private func checkTheRealPrimaryReplicates(_ cluster: TwoNodeCluster, file: StaticString = #filePath, line: UInt = #line) throws {
        try cluster.startPrimary()
        let bytes = pattern(100_000, seed: 77)
        XCTAssertTrue(FileManager.default.createFile(atPath: cluster.primaryDirectory + "/after", contents: Data(bytes)), file: file, line: line)
        XCTAssertEqual(FileManager.default.contents(atPath: cluster.secondaryDirectory + "/after"), Data(bytes),
                       "the write is on the secondary's mount once the call returned", file: file, line: line)
        cluster.stop()
        XCTAssertFalse(cluster.primaryLog.contains("continuing alone"), cluster.primaryLog, file: file, line: line)
        let differences = try TreeSnapshot(of: cluster.primaryDirectory).differences(from: TreeSnapshot(of: cluster.secondaryDirectory))
        XCTAssert(differences.isEmpty, "the copies differ:\n" + differences.joined(separator: "\n"), file: file, line: line)
    }

    private func modificationTime(_ path: String) throws -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { throw TestFailure("stat \(path): errno \(errno)") }
        return "\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) ctime \(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec)"
    }

    /// Two machines both started as node1: the secondary applies one primary's stream only.
    func testASecondPrimaryIsRefusedWhileOneIsConnected() throws {
        try requireMountPrivileges()
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        try cluster.start()
        let otherPrefix = try cluster.scratch.sub("impostor")
        _ = try cluster.scratch.sub("impostor/data")
        let impostor = try NodeProcess(node: "node1", arguments: ["--role", "primary"],
                                       config: try cluster.variantConfig(label: "impostor", primaryPrefix: otherPrefix),
                                       log: cluster.scratch.path + "/impostor.log")
        defer { impostor.stop() }
        impostor.process.waitUntilExit()
        XCTAssertEqual(impostor.process.terminationStatus, 1, impostor.log)
        XCTAssertTrue(impostor.log.contains("already receives this module from another primary"), impostor.log)
        XCTAssertFalse(isReplFSMounted(otherPrefix + "/data"))
        XCTAssertEqual(cluster.waitForSecondaryLog("refusing a second primary stream").count, 1, cluster.secondaryLog)
        try "still replicated\n".write(toFile: cluster.primaryDirectory + "/after", atomically: false, encoding: .utf8)
        XCTAssertEqual(try String(contentsOfFile: cluster.secondaryDirectory + "/after", encoding: .utf8), "still replicated\n")
    }
}
