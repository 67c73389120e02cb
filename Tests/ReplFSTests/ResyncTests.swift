import Foundation
import Glibc
import TestSupport
import XCTest

/// Generations, the journal and resynchronisation, with two real `mirror run` nodes.
final class ResyncTests: XCTestCase {
    private let mebibyte = 1 << 20

    func testARestartedSecondaryReceivesOnlyTheRegionsChangedWhileItWasAway() throws {
        try requireMountPrivileges()
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        try cluster.start()
        let big = cluster.primaryDirectory + "/big"
        let size = 1024 * mebibyte
        try writeFile(big, size: size, seed: 1)
        // A writer keeps writing to another file across the loss and the return of the peer.
        let writer = BackgroundWriter(path: cluster.primaryDirectory + "/busy")
        writer.start()
        defer { writer.stop() }
        usleep(300_000)
        let busySizeAtLoss = fileSize(cluster.primaryDirectory + "/busy")
        cluster.kill9("node2")
        // 1% of the big file changes while the secondary is away: 10 blocks of 1 MiB.
        var generator = SeededGenerator(seed: 7)
        let fd = open(big, O_WRONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var changed = Set<Int>()
        while changed.count < 10 { changed.insert(Int.random(in: 0..<1024, using: &generator)) }
        for block in changed.sorted() {
            let bytes = pattern(mebibyte, seed: UInt64(block) + 100)
            XCTAssertEqual(pwrite(fd, bytes, bytes.count, off_t(block * mebibyte)), bytes.count)
        }
        XCTAssertEqual(fsync(fd), 0)
        close(fd)
        try cluster.waitForLog(of: "node1", containing: "continuing alone", timeout: 10)
        usleep(500_000)
        writer.stop()
        XCTAssertLessThan(writer.longestWrite, 6, "a write waited for the lost peer longer than the acknowledgement timeout")
        XCTAssertGreaterThan(writer.writes, 10)
        // What changed alone: the 10 blocks, and the busy file's regions from where it was at the loss.
        let busyStart = busySizeAtLoss / UInt64(mebibyte) * UInt64(mebibyte)
        let changedBytes = UInt64(10 * mebibyte) + fileSize(cluster.primaryDirectory + "/busy") - busyStart
        let resyncs = cluster.occurrences(of: "is up to date", inLogOf: "node1")
        try cluster.startSecondary("node2")
        try cluster.waitForLog(of: "node1", containing: "is up to date", beyond: resyncs, timeout: 60)
        let sent = try XCTUnwrap(bytesSentByLastResync(cluster.primaryLog), cluster.primaryLog)
        XCTAssertLessThanOrEqual(sent, changedBytes + changedBytes / 10, "bytes sent \(sent) for \(changedBytes) changed:\n\(cluster.primaryLog)")
        XCTAssertGreaterThanOrEqual(sent, UInt64(10 * mebibyte), "every changed region travels:\n\(cluster.primaryLog)")
        cluster.stop()
        let differences = try TreeSnapshot(of: cluster.primaryDirectory).differences(from: TreeSnapshot(of: cluster.secondaryDirectory))
        XCTAssertTrue(differences.isEmpty, differences.joined(separator: "\n") + "\n" + cluster.primaryLog + cluster.secondaryLog)
    }

    func testAPrimaryCrashResendsOnlyItsActivityLog() throws {
        try requireMountPrivileges()
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        try cluster.start()
        // 2 GiB of regions written once long ago would make a full resync obvious.
        try writeFile(cluster.primaryDirectory + "/old", size: 64 * mebibyte, seed: 3)
        try writeFile(cluster.primaryDirectory + "/recent", size: 2 * mebibyte, seed: 4)
        cluster.kill9("node1")
        try cluster.startPrimary("node1")
        try cluster.waitForLog(of: "node1", containing: "is up to date", timeout: 60)
        let sent = try XCTUnwrap(bytesSentByLastResync(cluster.primaryLog), cluster.primaryLog)
        XCTAssertTrue(cluster.primaryLog.contains("in-sync"), cluster.primaryLog)
        XCTAssertLessThanOrEqual(sent, UInt64(66 * mebibyte), "only regions of the activity log travel")
        cluster.stop()
        let differences = try TreeSnapshot(of: cluster.primaryDirectory).differences(from: TreeSnapshot(of: cluster.secondaryDirectory))
        XCTAssertTrue(differences.isEmpty, differences.joined(separator: "\n"))
    }

    func testADivergenceIsRefusedOnBothSidesAndNothingIsOverwritten() throws {
        try requireMountPrivileges()
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        try cluster.start()
        try "shared\n".write(toFile: cluster.primaryDirectory + "/shared", atomically: false, encoding: .utf8)
        cluster.stop()
        // node2 serves alone (as after a failover), then node1 serves alone: both wrote without the other.
        try cluster.startPrimary("node2", peerWait: 0.5)
        try cluster.waitForLog(of: "node2", containing: "serving alone", timeout: 10)
        try "written on node2\n".write(toFile: cluster.secondaryDirectory + "/only-on-node2", atomically: false, encoding: .utf8)
        cluster.stop("node2")
        try cluster.startPrimary("node1", peerWait: 0.5)
        try "written on node1\n".write(toFile: cluster.primaryDirectory + "/only-on-node1", atomically: false, encoding: .utf8)
        cluster.stop("node1")
        try cluster.startSecondary("node2")
        let (status, log) = try cluster.runToExit("node1", role: "primary")
        XCTAssertNotEqual(status, 0, "the primary must not start over a divergent peer:\n\(log)")
        XCTAssertTrue(log.contains("divergence"), log)
        XCTAssertTrue(log.contains("node1 holds generation") && log.contains("node2 holds generation"), log)
        XCTAssertTrue(log.contains("served alone since"), log)
        XCTAssertTrue(log.contains("only-on-node1") || log.contains("only-on-node2"), "the message names changed files:\n\(log)")
        try cluster.waitForLog(of: "node2", containing: "refusing to resynchronise", timeout: 5)
        cluster.stop()
        XCTAssertTrue(FileManager.default.fileExists(atPath: cluster.primaryDirectory + "/only-on-node1"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: cluster.primaryDirectory + "/only-on-node2"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: cluster.secondaryDirectory + "/only-on-node2"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: cluster.secondaryDirectory + "/only-on-node1"))
    }

    func testAnOlderCopyIsNotServedAsPrimary() throws {
        try requireMountPrivileges()
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        try cluster.start()
        cluster.stop()
        // node2 takes over alone and writes; node1's copy is now older.
        try cluster.startPrimary("node2", peerWait: 0.5)
        try "newer\n".write(toFile: cluster.secondaryDirectory + "/newer", atomically: false, encoding: .utf8)
        let resyncs = cluster.occurrences(of: "is up to date", inLogOf: "node2")
        try cluster.startSecondary("node1")
        try cluster.waitForLog(of: "node2", containing: "is up to date", beyond: resyncs, timeout: 30)
        XCTAssertEqual(try String(contentsOfFile: cluster.primaryDirectory + "/newer", encoding: .utf8), "newer\n",
                       "node1 received node2's change")
        cluster.stop()
        // The other way round is refused: node1 was the secondary of the newest generation... and
        // node2 wrote alone again since.
        try cluster.startPrimary("node2", peerWait: 0.5)
        try "newest\n".write(toFile: cluster.secondaryDirectory + "/newest", atomically: false, encoding: .utf8)
        cluster.stop("node2")
        try cluster.startSecondary("node2")
        let (status, log) = try cluster.runToExit("node1", role: "primary")
        XCTAssertNotEqual(status, 0, log)
        XCTAssertTrue(log.contains("older"), log)
        cluster.stop()
        XCTAssertTrue(FileManager.default.fileExists(atPath: cluster.secondaryDirectory + "/newest"), "node2's data is untouched")
    }

    func testACopyLeftByAnInterruptedResyncIsServedOnlyWhenForced() throws {
        try requireMountPrivileges()
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        try cluster.start()
        cluster.stop()
        // As a secondary killed in the middle of a resync leaves it:
        let statePath = cluster.scratch.path + "/node2/var/lib/mirror/data/0/generations"
        let text = try String(contentsOfFile: statePath, encoding: .utf8).replacingOccurrences(of: "up_to_date=true", with: "up_to_date=false")
        try text.write(toFile: statePath, atomically: true, encoding: .utf8)
        let (status, log) = try cluster.runToExit("node2", role: "primary", peerWait: 0.5)
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(log.contains("not up to date") && log.contains("--force"), log)
        try cluster.startPrimary("node2", peerWait: 0.5, force: true)
        try cluster.waitForLog(of: "node2", containing: "forced", timeout: 5)
        cluster.stop()
        XCTAssertTrue(cluster.generations(of: "node2").contains("up_to_date=true"), cluster.generations(of: "node2"))
    }

    func testVerifyReportsWhatDiffersAndChangesNothing() throws {
        try requireMountPrivileges()
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        try cluster.start()
        try writeFile(cluster.primaryDirectory + "/data", size: 5 * mebibyte, seed: 8)
        try "same\n".write(toFile: cluster.primaryDirectory + "/small", atomically: false, encoding: .utf8)
        var (status, output) = try runMirror(["verify", "--config", cluster.configPath, "--node", "node1"])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("identical"), output)
        // Each node's status, as the operator sees it.
        (status, output) = try runMirror(["status", "--config", cluster.configPath, "--node", "node1"])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("data (\(cluster.primaryDirectory)): node1 primary"), output)
        XCTAssertTrue(output.contains("peer: node2 connected, up to date") && output.contains("last_resync: "), output)
        (status, output) = try runMirror(["status", "--config", cluster.configPath, "--node", "node2"])
        XCTAssertTrue(output.contains("node2 secondary") && output.contains("peer: receiving from node1"), output)
        // Damage node2's copy behind the cluster's back (as bit rot would): one region of "data".
        cluster.stop("node2")
        let damaged = open(cluster.secondaryDirectory + "/data", O_WRONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(damaged, 0)
        XCTAssertEqual(pwrite(damaged, [UInt8](repeating: 0xEE, count: 100), 100, off_t(3 * mebibyte + 5)), 100)
        close(damaged)
        let resyncs = cluster.occurrences(of: "is up to date", inLogOf: "node1")
        try cluster.startSecondary("node2")
        try cluster.waitForLog(of: "node1", containing: "is up to date", beyond: resyncs, timeout: 30)
        (status, output) = try runMirror(["verify", "--config", cluster.configPath, "--node", "node1"])
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("data: content differs in 1 region(s)") && output.contains("(3)"), output)
        XCTAssertTrue(output.contains("1 difference(s)"), output)
        cluster.stop()
        (status, output) = try runMirror(["status", "--config", cluster.configPath, "--node", "node1"])
        XCTAssertTrue(output.contains("not running (last primary"), output)
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: cluster.secondaryDirectory + "/data"))
        XCTAssertEqual(bytes[3 * mebibyte + 5], 0xEE, "verify changes nothing")
    }

    // MARK: Helpers

    private func runMirror(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: mirrorExecutable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    private func fileSize(_ path: String) -> UInt64 {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_size) : 0
    }

    private func writeFile(_ path: String, size: Int, seed: UInt64) throws {
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestFailure("open \(path): errno \(errno)") }
        defer { close(fd) }
        let chunk = pattern(4 * mebibyte, seed: seed)
        var offset = 0
        while offset < size {
            let count = min(chunk.count, size - offset)
            guard pwrite(fd, chunk, count, off_t(offset)) == count else { throw TestFailure("write \(path): errno \(errno)") }
            offset += count
        }
        guard fsync(fd) == 0 else { throw TestFailure("fsync \(path): errno \(errno)") }
    }

    /// The bytes of region data the last completed resync sent, from the primary's log.
    private func bytesSentByLastResync(_ log: String) -> UInt64? {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("is up to date: resync") }),
              let range = line.range(of: " sent ") else { return nil }
        return UInt64(line[range.upperBound...].prefix { $0.isNumber })
    }
}

/// Appends 4 KiB records to a file on its own thread, timing each write.
final class BackgroundWriter {
    private let path: String
    private let lock = NSLock()
    private var running = false
    private var thread: Thread?
    private(set) var writes = 0
    private(set) var longestWrite: TimeInterval = 0
    private let done = DispatchSemaphore(value: 0)

    init(path: String) { self.path = path }

    func start() {
        running = true
        let thread = Thread { [self] in
            let fd = open(path, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0o644)
            let record = [UInt8](repeating: 0x62, count: 4096)
            while lock.withLock({ running }) && fd >= 0 {
                let started = Date()
                guard write(fd, record, record.count) == record.count else { break }
                let elapsed = Date().timeIntervalSince(started)
                lock.withLock {
                    writes += 1
                    longestWrite = max(longestWrite, elapsed)
                }
                usleep(5_000)
            }
            if fd >= 0 { close(fd) }
            done.signal()
        }
        self.thread = thread
        thread.start()
    }

    func stop() {
        let wasRunning = lock.withLock { () -> Bool in
            defer { running = false }
            return running
        }
        if wasRunning { done.wait() }
    }
}
