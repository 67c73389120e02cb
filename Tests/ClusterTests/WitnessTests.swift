import Foundation
import Glibc
import TestSupport
import XCTest

/// The cluster daemons with a witness (`mirror witness`): a node serves without its peer only
/// under the witness's lease, so the survivor of a crash takes over once the dead primary's lease
/// has run out, and nobody takes over while the witness cannot be asked.
final class WitnessTests: XCTestCase {
    func testTakeoverWaitsForTheWitnessAndItsLease() throws {
        let witnessPort = try freePort(on: "127.0.0.3", type: SOCK_DGRAM)
        let lab = try ClusterLab(extra: "[witness]\naddress = \"127.0.0.3:\(witnessPort)\"")
        var witness = try startWitness(lab)
        try lab.startPair()
        XCTAssertTrue(lab.log(of: "node1").contains("witness agrees"), "node1 served under the witness's grant")

        // Without the witness, the survivor of a crash must not serve: it cannot know the
        // primary is dead rather than cut off from it.
        witness.terminate()
        witness.waitUntilExit()
        lab.crash("node1")
        Thread.sleep(forTimeInterval: 8)
        let waiting = lab.state("node2", "AM")
        XCTAssertTrue(waiting == "SECOND" || waiting == "WAIT", "node2 serves without the witness: \(waiting ?? "down")")
        XCTAssertEqual(lab.starts("node2", "AM"), 0, "the application was not started on node2")

        witness = try startWitness(lab)
        defer { witness.terminate(); witness.waitUntilExit() }
        try lab.waitFor("AM", nil, "ALONE", timeout: 20)
        XCTAssertTrue(lab.log(of: "node2").contains("witness agrees"), lab.log(of: "node2"))
        XCTAssertEqual(lab.starts("node2", "AM"), 1)
    }

    private func startWitness(_ lab: ClusterLab) throws -> Process {
        let log = lab.scratch.path + "/witness-\(UInt32.random(in: 0...UInt32.max)).log"
        guard FileManager.default.createFile(atPath: log, contents: nil) else { throw TestFailure("cannot create \(log)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: mirrorExecutable)
        process.arguments = ["witness", "--config", lab.configPath, "--state-dir", lab.scratch.path + "/witness-state"]
        let handle = FileHandle(forWritingAtPath: log)!
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("listening on") {
            guard process.isRunning, Date() < deadline else { throw TestFailure("mirror witness did not start") }
            usleep(20_000)
        }
        return process
    }
}
