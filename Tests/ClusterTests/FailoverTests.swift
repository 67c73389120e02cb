import ControlChannel
import Foundation
import Glibc
import TestSupport
import XCTest

/// Two cluster daemons on this machine, driven with the real `clusterctl`: the states the pair
/// goes through, the application started and stopped where it should be, the data replicated,
/// failed over and resynchronised.
final class FailoverTests: XCTestCase {
    /// A fresh pair serves nothing until the operator names the reference; then (PRIM, SECOND),
    /// replication, a crash of the primary taken over within the detection timeout, and the
    /// returning node resynchronised by change map as the new SECOND (no automatic switch back).
    func testFreshPairFailsOverAndTheReturningNodeBecomesSecond() throws {
        let lab = try ClusterLab()
        try lab.start("node1")
        try lab.start("node2")
        try lab.waitFor("AM", "WAIT", "WAIT")
        let note = try lab.waitForLog(of: "node1", containing: "both-just-created")
        XCTAssertTrue(note.contains("nobody may serve automatically"), note)
        XCTAssertEqual(lab.starts("node1", "AM") + lab.starts("node2", "AM"), 0, "no application started without a reference")

        lab.ok("node1", ["prim", "-m", "AM"])
        try lab.waitFor("AM", "PRIM", "SECOND")
        XCTAssertEqual(lab.starts("node1", "AM"), 1)
        XCTAssertEqual(lab.starts("node2", "AM"), 0)
        let primary = lab.directory("node1", "AM"), secondary = lab.directory("node2", "AM")
        try Data("before the crash\n".utf8).write(to: URL(fileURLWithPath: primary + "/ledger"))
        XCTAssertEqual(try String(contentsOfFile: secondary + "/ledger", encoding: .utf8), "before the crash\n")
        XCTAssertEqual(open(secondary + "/intruder", O_WRONLY | O_CREAT, 0o644), -1)
        XCTAssertEqual(errno, EROFS, "the SECOND's copy is read-only for applications")

        lab.crash("node1")
        let takeover = try lab.waitFor("AM", nil, "ALONE", timeout: 10)
        XCTAssertLessThan(takeover, 5.5, "detection (3 s) and promotion within the target")
        XCTAssertEqual(lab.starts("node2", "AM"), 1, "the application started on the survivor")
        XCTAssertNotNil(lab.applicationPID("node2", "AM"))
        XCTAssertEqual(try String(contentsOfFile: secondary + "/ledger", encoding: .utf8), "before the crash\n")
        try Data("written alone\n".utf8).write(to: URL(fileURLWithPath: secondary + "/alone"))
        let status = lab.ok("node2", ["status", "-m", "AM"])
        XCTAssertTrue(status.contains("AM: node2 ALONE"), status)

        try lab.start("node1")
        try lab.waitFor("AM", "SECOND", "PRIM")
        try lab.waitUntilUpToDate("node1", "AM")
        XCTAssertEqual(try String(contentsOfFile: primary + "/alone", encoding: .utf8), "written alone\n")
        XCTAssertTrue(lab.log(of: "node2").contains("resync by change map"), "only what changed travels")
        XCTAssertEqual(lab.starts("node1", "AM"), 1, "no automatic switch back")
        let verify = lab.ok("node2", ["verify", "-m", "AM"])
        XCTAssertTrue(verify.contains("identical between node2 and node1"), verify)
        let timeline = try XCTUnwrap(report("node2", lab)?.lastFailover)
        XCTAssertEqual(timeline.steps.map(\.name), ["peer last heard (this node was SECOND)", "decided to serve", "mounted read-write",
                                                     "application started"])
    }

    /// Replication lost while the heartbeats still flow (its TCP connection cut, both ends): the
    /// primary's next change is held until the SECOND cannot serve without it (it heard the
    /// primary's new generation and counts its copy out of date, or the reconnected link already
    /// resynchronised it), so whenever the primary dies after the change returned, the SECOND
    /// either waits or takes over holding the change. Then the pair is whole again.
    func testReplicationLostWhileHeartbeatsFlowHoldsChangesUntilTheSecondCannotServeWithoutThem() throws {
        let lab = try ClusterLab()
        try lab.startPair()
        let primary = lab.directory("node1", "AM"), secondary = lab.directory("node2", "AM")
        try Data("replicated\n".utf8).write(to: URL(fileURLWithPath: primary + "/before"))
        XCTAssertEqual(try String(contentsOfFile: secondary + "/before", encoding: .utf8), "replicated\n")
        try lab.waitUntilUpToDate("node2", "AM")

        try lab.cutReplication(to: "node2")
        let text = Array("written while the SECOND was cut off\n".utf8)
        let started = Date()
        XCTAssertEqual(synchronousWrite(primary + "/acknowledged", text, timeout: 10), 0)
        let held = Date().timeIntervalSince(started)
        lab.crash("node1")
        print("the change made alone returned after \(Int(held * 1000)) ms")
        let released = try lab.waitForLog(of: "node1", containing: "changes made alone released after", timeout: 1)
        XCTAssertTrue(released.contains("node2 cannot serve without them"), released)

        // Past the detection timeout (3 s): the SECOND serves only with the change.
        Thread.sleep(forTimeInterval: 6)
        let expected = String(decoding: text, as: UTF8.self)
        if lab.state("node2", "AM") == "ALONE" {
            XCTAssertEqual(try? String(contentsOfFile: secondary + "/acknowledged", encoding: .utf8), expected,
                           "the SECOND took over: it must hold every acknowledged change")
            try lab.start("node1")
            try lab.waitFor("AM", "SECOND", "PRIM", timeout: 30)
            try lab.waitUntilUpToDate("node1", "AM")
        } else {
            XCTAssertEqual(lab.state("node2", "AM"), "WAIT", "a SECOND that knows its copy is out of date waits")
            try lab.start("node1")
            try lab.waitFor("AM", "PRIM", "SECOND", timeout: 30)
            try lab.waitUntilUpToDate("node2", "AM")
        }
        XCTAssertEqual(try String(contentsOfFile: secondary + "/acknowledged", encoding: .utf8), expected)
        XCTAssertEqual(try String(contentsOfFile: primary + "/acknowledged", encoding: .utf8), expected)
    }

    /// Only the PRIM's daemon dies (kill -9): its application keeps running on the dead mount. The
    /// SECOND takes over; the restarted daemon runs the stop script before anything else (over a
    /// read-only mount: nothing unreplicated is written), then joins as SECOND.
    func testARestartedDaemonFirstStopsTheApplicationItsDeadPredecessorLeft() throws {
        let lab = try ClusterLab()
        try lab.startPair()
        let pid = try XCTUnwrap(lab.recordedApplicationPID("node1", "AM"))
        lab.crashDaemonOnly("node1")
        XCTAssertTrue(processIsAlive(pid), "the application outlives its daemon")
        let deadline = Date().addingTimeInterval(15)
        while lab.state("node2", "AM") != "ALONE", Date() < deadline { usleep(100_000) }
        XCTAssertEqual(lab.state("node2", "AM"), "ALONE")

        try lab.start("node1")
        try lab.waitForLog(of: "node1", containing: "the previous daemon died while the application ran here")
        try lab.waitFor("AM", "SECOND", "PRIM")
        XCTAssertFalse(processIsAlive(pid), "stopped by the stop script of the restarted daemon")
        XCTAssertTrue(lab.log(of: "node1").contains("Read-only file system"), "the stop script could not change the copy")
        try lab.waitUntilUpToDate("node1", "AM")
        XCTAssertEqual(lab.starts("node1", "AM"), 1, "the application is not started again on node1")

        // A clean stop leaves nothing for the next daemon to clean up.
        lab.stop("node1")
        try lab.start("node1")
        try lab.waitFor("AM", "SECOND", "PRIM")
        XCTAssertEqual(lab.log(of: "node1").components(separatedBy: "the previous daemon died while").count, 2)
    }

    /// The SECOND's daemon dies (kill -9): the primary goes on alone (its change held until the
    /// SECOND was silent for the timeout), then dies too. The old SECOND starts first: its copy
    /// followed node1 when its daemon died, so it no longer counts as up to date and the node
    /// waits rather than serve without node1's change; node1's return makes it SECOND again,
    /// resynchronised with that change.
    func testANodeThatDiedAsSecondDoesNotServeAloneWhenItStartsFirst() throws {
        let lab = try ClusterLab()
        try lab.startPair()
        try lab.waitUntilUpToDate("node2", "AM")
        let primary = lab.directory("node1", "AM"), secondary = lab.directory("node2", "AM")
        lab.crashDaemonOnly("node2")
        let text = Array("written after node2 died\n".utf8)
        XCTAssertEqual(synchronousWrite(primary + "/alone", text, timeout: 10), 0)
        try lab.waitForLog(of: "node1", containing: "changes made alone released after")
        lab.crash("node1")

        try lab.start("node2")
        Thread.sleep(forTimeInterval: 5)
        XCTAssertEqual(lab.state("node2", "AM"), "WAIT", "past the timeout, a copy that may lack node1's changes does not serve")
        XCTAssertEqual(lab.starts("node2", "AM"), 0)
        XCTAssertTrue(lab.log(of: "node2").contains("this copy followed node1 when the previous daemon ended"), lab.log(of: "node2"))

        try lab.start("node1")
        try lab.waitFor("AM", "PRIM", "SECOND", timeout: 30)
        try lab.waitUntilUpToDate("node2", "AM")
        XCTAssertEqual(try String(contentsOfFile: secondary + "/alone", encoding: .utf8), String(decoding: text, as: UTF8.self))
    }

    /// `stop` on the PRIM: the SECOND takes over as soon as the PRIM has stopped its application
    /// and unmounted (no timeout wait, and never while the application still runs there);
    /// `swap` hands the service back; `start` rejoins.
    func testStopAndSwapMoveTheServiceWithoutWaitingForTheTimeout() throws {
        let lab = try ClusterLab()
        try lab.startPair()

        lab.ok("node1", ["stop", "-m", "AM"])
        XCTAssertNil(lab.applicationPID("node1", "AM"), "stop returns once the application is stopped")
        let moved = try lab.waitFor("AM", "STOP", "ALONE", timeout: 10)
        XCTAssertLessThan(moved, 2, "a stopped PRIM is taken over at once")
        lab.ok("node1", ["start", "-m", "AM"])
        try lab.waitFor("AM", "SECOND", "PRIM")

        try lab.waitUntilUpToDate("node1", "AM")
        XCTAssertTrue(try lab.health("node2", "AM").contains(" 200 "), "the serving node answers 200 to load balancers")
        XCTAssertTrue(try lab.health("node1", "AM").contains(" 503 "))
        let swap = lab.ok("node2", ["swap", "-m", "AM"])
        XCTAssertTrue(swap.contains("swap"), swap)
        try lab.waitFor("AM", "PRIM", "SECOND")
        XCTAssertEqual(lab.starts("node1", "AM"), 2)
        XCTAssertEqual(lab.starts("node2", "AM"), 1)
        XCTAssertTrue(try lab.health("node1", "AM").contains(" 200 "))
        XCTAssertTrue(try lab.health("node2", "AM").contains(" 503 "))
        XCTAssertTrue(try lab.health("node2", "XY").contains(" 404 "))
        let refused = lab.clusterctl("node2", ["swap", "-m", "AM"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.errors.contains("swap is run on the PRIM node"), refused.errors)
    }

    /// Maintenance on the SECOND: stopped, the PRIM goes on ALONE; started again, it receives
    /// only what changed meanwhile (the PRIM's change map), not a comparison of everything.
    func testASecondBackFromMaintenanceReceivesOnlyWhatChanged() throws {
        let lab = try ClusterLab()
        try lab.startPair()
        lab.ok("node2", ["stop", "-m", "AM"])
        try lab.waitFor("AM", "ALONE", "STOP")
        try Data("during maintenance\n".utf8).write(to: URL(fileURLWithPath: lab.directory("node1", "AM") + "/maintenance"))
        lab.ok("node2", ["start", "-m", "AM"])
        try lab.waitFor("AM", "PRIM", "SECOND")
        XCTAssertEqual(try String(contentsOfFile: lab.directory("node2", "AM") + "/maintenance", encoding: .utf8), "during maintenance\n")
        let resyncs = lab.log(of: "node1").split(separator: "\n").filter { $0.contains("is up to date: resync by") }
        XCTAssertEqual(resyncs.count, 2, resyncs.joined(separator: "\n"))
        XCTAssertTrue(resyncs.last?.contains("resync by change map") == true, lab.log(of: "node1") + "\n--- node2:\n" + lab.log(of: "node2"))
    }

    /// Module A primary on node1 while module B is primary on node2, each failing over alone.
    func testTwoModulesServeOnDifferentNodes() throws {
        let lab = try ClusterLab(modules: [ClusterLab.ModuleSpec(name: "A"), ClusterLab.ModuleSpec(name: "B")])
        try lab.start("node1")
        try lab.start("node2")
        lab.ok("node1", ["prim", "-m", "A"])
        lab.ok("node2", ["prim", "-m", "B"])
        try lab.waitFor("A", "PRIM", "SECOND")
        try lab.waitFor("B", "SECOND", "PRIM")
        try Data("a".utf8).write(to: URL(fileURLWithPath: lab.directory("node1", "A") + "/f"))
        try Data("b".utf8).write(to: URL(fileURLWithPath: lab.directory("node2", "B") + "/f"))
        XCTAssertEqual(try String(contentsOfFile: lab.directory("node2", "A") + "/f", encoding: .utf8), "a")
        XCTAssertEqual(try String(contentsOfFile: lab.directory("node1", "B") + "/f", encoding: .utf8), "b")
        let status = lab.ok("node1", ["status"])
        XCTAssertTrue(status.contains("A: node1 PRIM, node2 SECOND"), status)
        XCTAssertTrue(status.contains("B: node1 SECOND, node2 PRIM"), status)

        lab.crash("node2")
        try lab.waitFor("A", "ALONE", nil, timeout: 10)
        try lab.waitFor("B", "ALONE", nil, timeout: 10)
        XCTAssertEqual(try String(contentsOfFile: lab.directory("node1", "B") + "/f", encoding: .utf8), "b")
    }

    /// Both nodes serve alone one after the other (a divergence): node2 dies as SECOND, node1
    /// writes alone and dies, node2 returns and, since it died as SECOND, waits until the
    /// operator forces it with `prim` and it writes alone too. The returning node1 is refused on
    /// both sides with who changed what, nothing is overwritten; `second --yes` on it says what it
    /// discards and resynchronises it from the other.
    func testDivergenceWaitsForTheOperatorsChoice() throws {
        let lab = try ClusterLab()
        try lab.startPair()
        lab.crash("node2")
        try lab.waitFor("AM", "ALONE", nil, timeout: 10)
        try Data("node1 alone\n".utf8).write(to: URL(fileURLWithPath: lab.directory("node1", "AM") + "/one"))
        lab.crash("node1")
        try lab.start("node2")
        lab.ok("node2", ["prim", "-m", "AM"])
        try lab.waitFor("AM", nil, "ALONE", timeout: 15)
        try Data("node2 alone\n".utf8).write(to: URL(fileURLWithPath: lab.directory("node2", "AM") + "/two"))

        try lab.start("node1")
        try lab.waitFor("AM", "WAIT", "ALONE")
        Thread.sleep(forTimeInterval: 2)
        try lab.waitFor("AM", "WAIT", "ALONE")
        XCTAssertTrue(lab.log(of: "node1").contains("divergence"), lab.log(of: "node1"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: lab.directory("node2", "AM") + "/one"), "nothing overwritten")

        let asked = lab.clusterctl("node1", ["second", "-m", "AM"])
        XCTAssertEqual(asked.status, 1)
        XCTAssertTrue((asked.output + asked.errors).contains("DISCARDED"), asked.output + asked.errors)
        XCTAssertTrue((asked.output + asked.errors).contains("one"), "names the file it would discard: \(asked.output)")
        let refused = lab.clusterctl("node2", ["second", "-m", "AM", "--yes"])
        XCTAssertEqual(refused.status, 1, "ALONE must be stopped first")

        lab.ok("node1", ["second", "-m", "AM", "--yes"])
        try lab.waitFor("AM", "SECOND", "PRIM", timeout: 30)
        XCTAssertEqual(try String(contentsOfFile: lab.directory("node1", "AM") + "/two", encoding: .utf8), "node2 alone\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: lab.directory("node1", "AM") + "/one"))
    }

    private func report(_ node: String, _ lab: ClusterLab) -> ModuleReport? {
        let result = lab.clusterctl(node, ["status", "-m", "AM", "--json"])
        return (try? ControlJSON.decode(ControlResponse.self, from: Array(result.output.utf8)))?.status?.modules.first
    }
}

