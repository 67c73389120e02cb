import Foundation
import Glibc
import TestSupport
import XCTest

/// What the primary acknowledged is on the secondary: a writer on the primary's mount is killed
/// with the primary's daemon (kill -9, at a seeded random moment), and every change whose call
/// returned must be in the secondary's copy with exactly its content.
///
/// Rounds with an even seed connect the nodes directly. Killing a process does not lose what it
/// wrote to its socket (the kernel still delivers it), so those rounds cannot tell "sent" from
/// "applied by the peer"; rounds with an odd seed connect them through a relay that holds each
/// frame for 2 ms and loses what it holds at the crash, as a dead machine would: there an
/// acknowledgement given before the secondary applied the change is caught.
final class DurabilityTests: XCTestCase {
    /// Rounds and seeds: REPLFS_DURABILITY_SEED=N reruns the round whose seed is N alone.
    private var seeds: [UInt64] {
        if let text = ProcessInfo.processInfo.environment["REPLFS_DURABILITY_SEED"], let seed = UInt64(text) { return [seed] }
        return (0..<20).map { 0xD0_2A_B1E0 + UInt64($0) }
    }

    /// The model the durability check uses: a last write that returned short (the daemon died
    /// between the requests the kernel split it into) leaves its remainder in flight.
    func testAShortLastWriteLeavesItsRemainderInFlight() throws {
        let log = try WriterLog(text: "I 1 create f1 1\nA 1\nI 2 write 1 100 5000\nA 2 2000\n")
        XCTAssertEqual(log.acknowledged.count, 2)
        XCTAssertEqual(log.inFlight?.number, 2)
        XCTAssertEqual(log.inFlight?.operation, .write(inode: 1, offset: 2100, length: 3000))
        XCTAssertNil(try WriterLog(text: "I 1 create f1 1\nA 1\nI 2 write 1 100 5000\nA 2 5000\n").inFlight)
    }

    func testEveryAcknowledgedChangeSurvivesAKilledPrimary() throws {
        try requireMountPrivileges()
        var acknowledged = 0
        var roundsWithInFlight = 0
        for seed in seeds {
            let result = try round(seed: seed)
            acknowledged += result.acknowledged
            if result.hadInFlight { roundsWithInFlight += 1 }
        }
        print("durability: \(seeds.count) round(s), \(acknowledged) acknowledged operations checked, "
              + "\(roundsWithInFlight) round(s) killed with an operation in flight")
        XCTAssertGreaterThan(acknowledged, seeds.count * 20, "the writer hardly wrote anything before the kills")
    }

    private func round(seed: UInt64) throws -> (acknowledged: Int, hadInFlight: Bool) {
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        let throughRelay = seed % 2 == 1
        if throughRelay { try cluster.start(throughRelayWithDelay: 0.002) } else { try cluster.start() }
        let scriptPath = cluster.scratch.path + "/writer.py"
        let logPath = cluster.scratch.path + "/writer.log" // outside both mounts
        try AcknowledgedWriter.script.write(toFile: scriptPath, atomically: false, encoding: .utf8)
        let outputPath = cluster.scratch.path + "/writer.out"
        guard FileManager.default.createFile(atPath: outputPath, contents: nil),
              let output = FileHandle(forWritingAtPath: outputPath) else { throw TestFailure("cannot create \(outputPath)") }
        var generator = SeededGenerator(seed: seed)
        let delay = 0.2 + Double(generator.int(in: 0...1300)) / 1000

        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        writer.arguments = [scriptPath, cluster.primaryDirectory, logPath, "\(seed)"]
        writer.standardOutput = output
        writer.standardError = output
        try writer.run()
        defer {
            if writer.isRunning { kill(writer.processIdentifier, SIGKILL) }
            writer.waitUntilExit()
        }
        // The random moment counts from the writer's first acknowledged operation.
        let started = Date()
        while !((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").contains("A 1") {
            guard writer.isRunning, Date().timeIntervalSince(started) < 20 else {
                throw TestFailure("seed \(seed): the writer did not start:\n\(outputText(outputPath))")
            }
            usleep(5_000)
        }
        usleep(useconds_t(delay * 1_000_000))
        guard let primary = cluster.primary, primary.process.isRunning else {
            throw TestFailure("seed \(seed): the primary died on its own:\n\(cluster.primaryLog)")
        }
        guard writer.isRunning else { throw TestFailure("seed \(seed): the writer stopped on its own:\n\(outputText(outputPath))") }
        cluster.crashPrimary(killingAlso: [writer.processIdentifier])
        writer.waitUntilExit()
        // Going on alone acknowledges without the peer, by design: not what this test is about.
        guard !primary.log.contains("continuing alone") else {
            throw TestFailure("seed \(seed): the primary went on alone before the crash:\n\(primary.log.suffix(3000))")
        }
        XCTAssertFalse(isReplFSMounted(cluster.primaryDirectory), "seed \(seed): the dead primary's mount is still there")
        // Killed, or exited after logging the failure of its call on the dead mount: nothing else.
        let writerOutput = outputText(outputPath)
        XCTAssertTrue(writer.terminationReason == .uncaughtSignal || (writer.terminationStatus == 1 && writerOutput.isEmpty),
                      "seed \(seed): the writer ended otherwise (status \(writer.terminationStatus)):\n\(writerOutput)")

        // The secondary noticed, survives, and has applied everything it received.
        let ends = cluster.waitForSecondaryLog("replication from node 'node1'")
        XCTAssertEqual(ends.count, 1, "seed \(seed): the secondary did not see the primary go:\n\(cluster.secondaryLog)")
        XCTAssertTrue(cluster.secondary?.process.isRunning ?? false, "seed \(seed): the secondary died:\n\(cluster.secondaryLog)")

        let log = try WriterLog(text: String(contentsOfFile: logPath, encoding: .utf8))
        var model = WriterModel()
        for entry in log.acknowledged { model.apply(entry) }
        let throughMount = differences(of: cluster.secondaryDirectory, from: model, inFlight: log.inFlight)
        cluster.stopSecondary()
        XCTAssertFalse(isReplFSMounted(cluster.secondaryDirectory))
        let plain = differences(of: cluster.secondaryDirectory, from: model, inFlight: log.inFlight)
        let inFlight = log.inFlight.map { "\($0.number) \($0.operation)\(log.inFlightErrno.map { " (failed: errno \($0))" } ?? "")" } ?? "none"
        let summary = "seed \(seed) (\(throughRelay ? "through the relay" : "direct")): killed after \(String(format: "%.2f", delay)) s, \(log.acknowledged.count) operations acknowledged, "
            + "in flight: \(inFlight)"
        print("durability: " + summary)
        if !throughMount.isEmpty || !plain.isEmpty {
            XCTFail("""
                \(summary)
                acknowledged changes missing or wrong on the secondary (rerun with REPLFS_DURABILITY_SEED=\(seed)):
                through its read-only mount:
                \(throughMount.isEmpty ? "  (as expected)" : throughMount.map { "  " + $0 }.joined(separator: "\n"))
                in its plain directory after stopping it:
                \(plain.isEmpty ? "  (as expected)" : plain.map { "  " + $0 }.joined(separator: "\n"))
                last operations acknowledged: \(log.acknowledged.suffix(8).map { "\($0.number) \($0.operation)" }.joined(separator: "; "))
                secondary's log:
                \(cluster.secondaryLog.suffix(3000))
                primary's log:
                \(cluster.primaryLog.suffix(3000))
                """)
        }
        return (log.acknowledged.count, log.inFlight != nil)
    }

    /// Differences between the secondary's files and the acknowledged changes; the operation in
    /// flight may be there or not (a write even in part), so either state is accepted.
    private func differences(of directory: String, from model: WriterModel, inFlight: WriterLog.Entry?) -> [String] {
        guard let inFlight else { return model.differences(in: directory) }
        if case .write = inFlight.operation { return model.differences(in: directory, inFlightWrite: inFlight) }
        let without = model.differences(in: directory)
        if without.isEmpty { return [] }
        let with = model.applying(inFlight).differences(in: directory)
        return with.isEmpty ? [] : without.map { "without the in-flight operation: " + $0 } + with.map { "with it: " + $0 }
    }

    private func outputText(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }
}
