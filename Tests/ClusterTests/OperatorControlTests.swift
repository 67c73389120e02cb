import ControlChannel
import Foundation
import Glibc
import TestSupport
import XCTest

/// What the operator's toggles and commands do to a running pair: process monitoring (errd),
/// checkers, boot, commands aimed at the peer (-H), refusals that change nothing, the health endpoint.
final class OperatorControlTests: XCTestCase {
    /// A dead application process is restarted here within the budget (2 restarts), then the
    /// module stops here and the peer takes over; with errd disabled, a death is left alone.
    func testProcessMonitoringRestartsThenHandsTheModuleOver() throws {
        let lab = try ClusterLab(modules: [ClusterLab.ModuleSpec(name: "AM", processMonitor: true)])
        try lab.startPair()
        for restart in 1...2 {
            try killApplication(lab, "node1")
            try waitUntil("restart \(restart)") { lab.starts("node1", "AM") == restart + 1 && lab.applicationPID("node1", "AM") != nil }
            XCTAssertEqual(lab.state("node1", "AM"), "PRIM")
        }
        try killApplication(lab, "node1")
        try lab.waitFor("AM", "STOP", "ALONE", timeout: 10)
        try lab.waitForTakeover("node2", count: 1)
        XCTAssertTrue(lab.log(of: "node1").contains("process-restart-budget-exhausted"))
        XCTAssertEqual(lab.starts("node2", "AM"), 1)

        lab.ok("node2", ["errd", "disable", "-m", "AM"])
        try killApplication(lab, "node2")
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertEqual(lab.state("node2", "AM"), "ALONE", "errd disabled: the death is not acted on")
        XCTAssertEqual(lab.starts("node2", "AM"), 1)
        let status = lab.ok("node2", ["status", "-m", "AM", "--json"])
        let module = try XCTUnwrap(try ControlJSON.decode(ControlResponse.self, from: Array(status.utf8)).status?.modules.first)
        XCTAssertFalse(module.errdEnabled)
    }

    /// A failing checker makes the PRIM step down and the SECOND take over (the application's
    /// checker runs only where it is served, so node1 then follows as SECOND); disabling it by
    /// name survives a daemon restart; an unknown checker name is refused.
    func testCheckerDownMovesTheServiceAndItsToggleSurvivesARestart() throws {
        let flagFile = "/tmp/mirror-checker-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(flagFile) }
        let script = try ScratchDirectory("checker")
        let probe = script.path + "/healthy"
        try "#!/bin/sh\n[ ! -e \(flagFile)-$MIRROR_NODE ]\n".write(toFile: probe, atomically: true, encoding: .utf8)
        chmod(probe, 0o755)
        let checker = """
            [[module.checker]]
            name = "app-health"
            type = "script"
            path = "\(probe)"
            interval = 0.5
            timeout = 0.5

            """
        let lab = try ClusterLab(modules: [ClusterLab.ModuleSpec(name: "AM", checkers: checker)])
        try lab.startPair()

        XCTAssertTrue(FileManager.default.createFile(atPath: flagFile + "-node1", contents: nil))
        try lab.waitFor("AM", "SECOND", "PRIM", timeout: 10)
        XCTAssertEqual(lab.starts("node2", "AM"), 1, "the service moved to node2")
        XCTAssertTrue(lab.log(of: "node1").contains("checker app-health fails"), "the log says which checker failed and why")
        let unknown = lab.clusterctl("node1", ["checker", "disable", "nope", "-m", "AM"])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.errors.contains("no checker \"nope\""), unknown.errors)

        lab.ok("node1", ["checker", "disable", "app-health", "-m", "AM"])
        try lab.waitFor("AM", "SECOND", "PRIM", timeout: 10)
        lab.stop("node1")
        try lab.start("node1")
        try lab.waitFor("AM", "SECOND", "PRIM", timeout: 10)
        let status = lab.ok("node1", ["status", "-m", "AM", "--json"])
        let module = try XCTUnwrap(try ControlJSON.decode(ControlResponse.self, from: Array(status.utf8)).status?.modules.first)
        XCTAssertEqual(module.checkers.map(\.enabled), [false], "the toggle survived the restart")
    }

    /// Interface and ping checkers run on every node: with one down, nobody serves, even after
    /// `prim`, until it is disabled; a TCP checker tests the application where it is served.
    func testInterfaceTcpAndPingCheckers() throws {
        let listener = try TCPListener()
        let checkers = """
            [[module.checker]]
            name = "nic"
            type = "interface"
            interface = "nosuch\(getpid() % 1000)"

            [[module.checker]]
            name = "loopback"
            type = "ping"
            host = "127.0.0.1"
            interval = 1
            timeout = 1

            [[module.checker]]
            name = "app-port"
            type = "tcp"
            address = "127.0.0.1:\(listener.port)"
            interval = 0.5
            timeout = 0.5

            """
        let lab = try ClusterLab(modules: [ClusterLab.ModuleSpec(name: "AM", checkers: checkers)])
        try lab.start("node1")
        try lab.start("node2")
        lab.ok("node1", ["prim", "-m", "AM"])
        Thread.sleep(forTimeInterval: 2)
        try lab.waitFor("AM", "WAIT", "WAIT")
        XCTAssertEqual(lab.starts("node1", "AM"), 0, "nothing served with the interface checker down")
        let status = lab.ok("node1", ["status", "-m", "AM"])
        XCTAssertTrue(status.contains("nic"), status)

        // The accepted prim waited for the checker: disabling it lets it go on.
        lab.ok("node1", ["-H", "all", "checker", "disable", "nic", "-m", "AM"])
        try lab.waitFor("AM", "PRIM", "SECOND")
        listener.close()
        let failed = try lab.waitForLog(of: "node1", containing: "checker app-port fails")
        XCTAssertTrue(failed.contains("no TCP connection to 127.0.0.1:\(listener.port)"), failed)
        try lab.waitForLog(of: "node1", containing: "a checker is down: stop serving")
        try lab.waitForLog(of: "node1", containing: "PRIM -> WAIT")
    }

    /// boot off: a restarted daemon leaves the module in STOP (the seed's warning: no early resync).
    /// -H aims a command at the peer through the daemons' channel; refusals change nothing.
    func testBootOffHostAimingAndRefusals() throws {
        let lab = try ClusterLab()
        try lab.startPair()

        lab.ok("node1", ["-H", "all", "boot", "-m", "AM", "off"])
        XCTAssertTrue(lab.ok("node2", ["boot", "-m", "AM", "status"]).contains("boot off"))
        lab.stop("node2")
        try lab.start("node2")
        Thread.sleep(forTimeInterval: 1.5)
        try lab.waitFor("AM", "ALONE", "STOP")
        lab.ok("node1", ["-H", "node2", "start", "-m", "AM"])
        try lab.waitFor("AM", "PRIM", "SECOND")

        let unknown = lab.clusterctl("node1", ["stop", "-m", "XY"])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.errors.contains("unknown module \"XY\""), unknown.errors)
        let primWhilePeerServes = lab.clusterctl("node2", ["prim", "-m", "AM"])
        XCTAssertEqual(primWhilePeerServes.status, 1)
        XCTAssertTrue(primWhilePeerServes.errors.contains("stop the module first"), primWhilePeerServes.errors)
        lab.ok("node2", ["stop", "-m", "AM"])
        let onlyCopy = lab.clusterctl("node1", ["-H", "node2", "prim", "-m", "AM"])
        XCTAssertEqual(onlyCopy.status, 1, "prim while the peer is PRIM")
        XCTAssertTrue(onlyCopy.errors.contains("node1 is serving"), onlyCopy.errors)
        lab.ok("node1", ["stop", "-m", "AM"])
        try lab.waitFor("AM", "STOP", "STOP")
        // node2 stopped first while node1 kept serving: node1 holds the only up-to-date copy.
        let second = lab.clusterctl("node1", ["second", "-m", "AM", "--yes"])
        XCTAssertEqual(second.status, 1)
        XCTAssertTrue(second.errors.contains("only up-to-date copy"), second.errors)
        try lab.waitFor("AM", "STOP", "STOP")
        lab.ok("node1", ["start", "-m", "AM"])
        lab.ok("node2", ["start", "-m", "AM"])
        try lab.waitFor("AM", "PRIM", "SECOND")

        lab.stop("node2")
        let unreachable = lab.clusterctl("node1", ["-H", "node2", "status"])
        XCTAssertEqual(unreachable.status, 1)
        XCTAssertTrue(unreachable.errors.contains("node2 is unreachable"), unreachable.errors)
        let noDaemon = lab.clusterctl("node2", ["status"])
        XCTAssertEqual(noDaemon.status, 2)
        XCTAssertTrue(noDaemon.errors.contains("not running"), noDaemon.errors)
    }

    /// A TCP listener on 127.0.0.1 (a free port) that accepts and closes, until closed.
    private final class TCPListener {
        let fd: Int32
        let port: UInt16

        init() throws {
            port = try freePort(on: "127.0.0.1")
            fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0, listen(fd, 64) == 0 else { throw TestFailure("listen on 127.0.0.1:\(port): \(errno)") }
        }

        func close() { _ = Glibc.close(fd) }
    }

    private func killApplication(_ lab: ClusterLab, _ node: String) throws {
        let pid = try XCTUnwrap(lab.applicationPID(node, "AM"))
        XCTAssertEqual(kill(pid, SIGKILL), 0)
    }

    private func waitUntil(_ what: String, timeout: TimeInterval = 10, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return }
            usleep(100_000)
        }
        throw TestFailure("\(what): not reached within \(timeout) s")
    }
}
