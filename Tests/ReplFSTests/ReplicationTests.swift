import CLinux
import Foundation
import Glibc
import TestSupport
import XCTest

/// Two `mirror run` nodes on this machine: what the application does on the primary's mount ends
/// identical in the secondary's copy, and a lost secondary does not stop the primary.
final class ReplicationTests: XCTestCase {
    func testNamedAndRandomOperationsEndIdenticalOnTheSecondary() throws {
        try requireMountPrivileges()
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        try cluster.start()
        let primary = OperationRunner(root: cluster.primaryDirectory)
        let named: [Operation] = [
            .create("a", mode: 0o644, exclusive: true), .write("a", offset: 0, length: 70_000, seed: 1),
            .append("a", length: 5000, seed: 2), .create("b", mode: 0o600, exclusive: false),
            .write("b", offset: 4096, length: 100, seed: 3), .rename("b", "a", flags: 0), .link("a", "h"),
            .symlink(target: "a", "s"), .mkdir("d", mode: 0o755), .mkdir("e", mode: 0o2775), .rmdir("e"),
            .create("d/f", mode: 0o644, exclusive: true), .write("d/f", offset: 0, length: 300_000, seed: 4),
            .chmod("d/f", mode: 0o640), .chown("d/f", uid: 1000, gid: 100), .utimens("d/f", atime: 1000, mtime: 2000),
            .setxattr("h", name: "user.k", value: "v", flags: 0), .setxattr("h", name: "user.j", value: "w", flags: 0),
            .removexattr("h", name: "user.j"), .setxattr("d", name: "user.dir", value: "yes", flags: 0),
            .truncate("d/f", size: 200_000),
            .fallocate("d/f", mode: clinux_FALLOC_FL_PUNCH_HOLE | clinux_FALLOC_FL_KEEP_SIZE, offset: 8192, length: 65536),
            .openTruncate("h"), .write("h", offset: 0, length: 10, seed: 5), .mkfifo("d/p"),
            .rename("d/f", "g", flags: 0), .rename("g", "s", flags: clinux_RENAME_EXCHANGE),
            .fsync("a", dataOnly: false), .fsync("d", dataOnly: true),
        ]
        for operation in named {
            if case .failed(let code) = primary.apply(operation) { XCTFail("\(operation) failed on the primary: errno \(code)") }
        }
        try writeAfterUnlinkingWhileOpen(cluster.primaryDirectory + "/u")
        try checkTheSecondarysMountShowsEachChangeAtOnce(cluster)
        var generator = OperationGenerator(seed: 0x5EED_3)
        for _ in 0..<400 { _ = primary.apply(generator.next()) }
        _ = primary.apply(.fsync("", dataOnly: false))
        cluster.stop()
        XCTAssertTrue(cluster.primaryLog.contains("unmounted"), "SIGTERM ends the primary cleanly:\n\(cluster.primaryLog)")
        XCTAssertTrue(cluster.secondaryLog.contains("unmounted"), "SIGTERM ends the secondary cleanly:\n\(cluster.secondaryLog)")
        XCTAssertFalse(cluster.primaryLog.contains("peer lost"), "the secondary was lost:\n\(cluster.primaryLog)")
        XCTAssertFalse(cluster.primaryLog.contains("could not apply"), "the secondary refused operations:\n\(cluster.primaryLog)")
        let differences = try TreeSnapshot(of: cluster.primaryDirectory).differences(from: TreeSnapshot(of: cluster.secondaryDirectory))
        XCTAssert(differences.isEmpty, "the copies differ:\n" + differences.joined(separator: "\n")
                  + "\nsecondary's log:\n\(cluster.secondaryLog.suffix(3000))")
    }

    func testKilledSecondaryLeavesThePrimaryWritingAlone() throws {
        try requireMountPrivileges()
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        try cluster.start()
        let fd = open(cluster.primaryDirectory + "/log", O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let record = [UInt8](repeating: 0x61, count: 4096)
        for _ in 0..<20 { XCTAssertEqual(write(fd, record, record.count), record.count) }
        cluster.killSecondary()
        let started = Date()
        for _ in 0..<200 {
            XCTAssertEqual(write(fd, record, record.count), record.count, "errno \(errno)")
        }
        XCTAssertEqual(fsync(fd), 0)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertLessThan(elapsed, 4, "the primary waited for the lost peer longer than the acknowledgement timeout")
        var st = stat()
        XCTAssertEqual(fstat(fd, &st), 0)
        XCTAssertEqual(st.st_size, 220 * 4096)
        cluster.stop()
        let lines = cluster.primaryLog.split(separator: "\n").filter { $0.contains("peer lost") && $0.contains("continuing alone") }
        XCTAssertEqual(lines.count, 1, "log:\n\(cluster.primaryLog)")
    }

    /// Several threads on the primary, on one small namespace (names collide: renames race with
    /// writes, unlinks with links...): after quiescence the secondary's copy is identical.
    func testRandomOperationsFromSeveralThreadsEndIdenticalOnTheSecondary() throws {
        try requireMountPrivileges()
        for seed: UInt64 in [0x7EAD_1, 0x7EAD_2] {
            let cluster = try TwoNodeCluster()
            defer { cluster.stop() }
            try cluster.start()
            let primary = OperationRunner(root: cluster.primaryDirectory)
            let group = DispatchGroup()
            for thread in 0..<4 {
                group.enter()
                Thread {
                    var generator = OperationGenerator(seed: seed &* 31 &+ UInt64(thread))
                    for _ in 0..<300 { _ = primary.apply(generator.next()) }
                    group.leave()
                }.start()
            }
            group.wait()
            _ = primary.apply(.fsync("", dataOnly: false))
            cluster.stop()
            XCTAssertFalse(cluster.primaryLog.contains("continuing alone"), "seed \(seed): the secondary was dropped:\n\(cluster.primaryLog)")
            let differences = try TreeSnapshot(of: cluster.primaryDirectory).differences(from: TreeSnapshot(of: cluster.secondaryDirectory))
            XCTAssert(differences.isEmpty, "seed \(seed): the copies differ:\n" + differences.joined(separator: "\n")
                      + "\nsecondary's log:\n\(cluster.secondaryLog.suffix(3000))")
        }
    }

    /// A file opened by a name that was then unlinked while another hard link keeps it: the
    /// primary cannot name it to the peer, so it drops the peer, and the resync at reconnection
    /// brings the write: the peer never silently misses it.
    func testAWriteThroughAnUnnamedHardLinkReachesThePeer() throws {
        try requireMountPrivileges()
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        // Made before the cluster starts: the initial resync copies them, and the primary has
        // not named the file on the stream yet when it is written below.
        let a = cluster.primaryDirectory + "/a"
        try "original".write(toFile: a, atomically: false, encoding: .utf8)
        XCTAssertEqual(link(a, cluster.primaryDirectory + "/b"), 0)
        try cluster.start()
        let fd = open(a, O_WRONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        XCTAssertEqual(unlink(a), 0)
        let resyncs = cluster.occurrences(of: "is up to date", inLogOf: "node1")
        XCTAssertEqual(pwrite(fd, "CHANGED!", 8, 0), 8)
        XCTAssertEqual(fsync(fd), 0)
        if (try? String(contentsOfFile: cluster.secondaryDirectory + "/b", encoding: .utf8)) != "CHANGED!" {
            // Not replicated live: then the peer was dropped and is resynchronised.
            try cluster.waitForLog(of: "node1", containing: "is up to date", beyond: resyncs, timeout: 30)
        }
        XCTAssertEqual(try String(contentsOfFile: cluster.secondaryDirectory + "/b", encoding: .utf8), "CHANGED!",
                       cluster.primaryLog)
        XCTAssertTrue(cluster.primaryLog.contains("could not be named to the peer"), cluster.primaryLog)
    }

    func testAFreshSecondaryReceivesThePrimarysCopyWhole() throws {
        try requireMountPrivileges()
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        // The secondary's copy has no history: what it holds is replaced by the primary's copy.
        XCTAssertTrue(FileManager.default.createFile(atPath: cluster.secondaryDirectory + "/stray", contents: Data("theirs".utf8)))
        XCTAssertTrue(FileManager.default.createFile(atPath: cluster.primaryDirectory + "/kept", contents: Data(pattern(3_000_000, seed: 4))))
        try cluster.start()
        XCTAssertTrue(cluster.primaryLog.contains("resync by checksum"), cluster.primaryLog)
        let primary = OperationRunner(root: cluster.primaryDirectory)
        XCTAssertEqual(primary.apply(.create("after", mode: 0o644, exclusive: true)), .ok(""))
        cluster.stop()
        XCTAssertFalse(cluster.primaryLog.contains("could not apply"), cluster.primaryLog)
        let differences = try TreeSnapshot(of: cluster.primaryDirectory).differences(from: TreeSnapshot(of: cluster.secondaryDirectory))
        XCTAssertTrue(differences.isEmpty, differences.joined(separator: "\n"))
        XCTAssertTrue(cluster.generations(of: "node2").contains("up_to_date=true"), cluster.generations(of: "node2"))
    }

    /// On the secondary's read-only mount: a change the primary's call returned from is visible
    /// at once, and applications cannot write.
    private func checkTheSecondarysMountShowsEachChangeAtOnce(_ cluster: TwoNodeCluster) throws {
        let primaryFile = cluster.primaryDirectory + "/visible"
        let secondaryFile = cluster.secondaryDirectory + "/visible"
        for round in 0..<5 {
            let text = "round \(round)\n"
            try text.write(toFile: primaryFile, atomically: false, encoding: .utf8)
            XCTAssertEqual(try String(contentsOfFile: secondaryFile, encoding: .utf8), text, "read on the secondary's mount")
        }
        XCTAssertEqual(rename(primaryFile, primaryFile + "-renamed"), 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: secondaryFile), "the old name is gone on the secondary at once")
        XCTAssertTrue(FileManager.default.fileExists(atPath: secondaryFile + "-renamed"))
        XCTAssertEqual(open(cluster.secondaryDirectory + "/new", O_CREAT | O_WRONLY, 0o644), -1)
        XCTAssertEqual(errno, EROFS, "applications cannot write on the secondary")
        XCTAssertEqual(unlink(secondaryFile + "-renamed"), -1)
        XCTAssertEqual(errno, EROFS)
    }

    /// Creates `path`, opens it, unlinks it, and writes through the open descriptor.
    private func writeAfterUnlinkingWhileOpen(_ path: String) throws {
        let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestFailure("open \(path): errno \(errno)") }
        defer { close(fd) }
        let bytes = pattern(10_000, seed: 9)
        XCTAssertEqual(write(fd, bytes, bytes.count), bytes.count)
        XCTAssertEqual(unlink(path), 0)
        XCTAssertEqual(pwrite(fd, bytes, bytes.count, 20_000), bytes.count)
        XCTAssertEqual(fsync(fd), 0)
    }
}
