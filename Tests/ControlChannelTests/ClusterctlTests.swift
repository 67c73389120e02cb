import ControlChannel
import Foundation
import Glibc
import TestSupport
import XCTest

/// The built clusterctl against a ControlServer with a scripted handler.
final class ClusterctlTests: XCTestCase {
    func testSafeKitWordOrderAndTheRequestSent() throws {
        let daemon = try ScriptedDaemon { request in
            ControlResponse(ok: true, message: "AM: boot \(request.arguments.first ?? "?")")
        }
        let boot = try runClusterctl(["boot", "-m", "AM", "off"], environment: ["CLUSTERCTL_SOCKET": daemon.socketPath])
        XCTAssertEqual(boot.status, 0, boot.standardError)
        XCTAssertEqual(boot.standardOutput, "AM: boot off\n")
        XCTAssertEqual(boot.standardError, "")

        let invocations: [[String]] = [
            ["boot", "off", "-m", "AM"],
            ["-H", "node2", "stop", "-m", "AM"],
            ["checker", "-m", "AM", "disable", "pg-port", "-H", "all"],
            ["errd", "disable", "-m", "AM"],
            ["second", "-m", "AM", "--yes"],
            ["status"],
            ["log", "-m", "AM"],
            ["verify", "-m", "DB"],
        ]
        for arguments in invocations {
            let result = try runClusterctl(["--socket", daemon.socketPath] + arguments)
            XCTAssertEqual(result.status, 0, "\(arguments): \(result.standardError)")
        }
        XCTAssertEqual(daemon.requests, [
            ControlRequest(verb: "boot", module: "AM", arguments: ["off"]),
            ControlRequest(verb: "boot", module: "AM", arguments: ["off"]),
            ControlRequest(verb: "stop", module: "AM", host: "node2"),
            ControlRequest(verb: "checker", module: "AM", arguments: ["disable", "pg-port"], host: "all"),
            ControlRequest(verb: "errd", module: "AM", arguments: ["disable"]),
            ControlRequest(verb: "second", module: "AM", yes: true),
            ControlRequest(verb: "status"),
            ControlRequest(verb: "log", module: "AM"),
            ControlRequest(verb: "verify", module: "DB"),
        ])
    }

    func testJSONOutputIsTheResponse() throws {
        let answer = ControlResponse(ok: true, message: "", status: sampleReport)
        let daemon = try ScriptedDaemon { _ in answer }
        let result = try runClusterctl(["--socket", daemon.socketPath, "status", "--json"])
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertEqual(try JSONDecoder().decode(ControlResponse.self, from: Data(result.standardOutput.utf8)), answer)
        XCTAssertTrue(result.standardOutput.hasPrefix("{\n"), "indented")

        daemon.answer { _ in .refused("unknown module 'XY'") }
        let refused = try runClusterctl(["--json", "--socket", daemon.socketPath, "stop", "-m", "XY"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(try JSONDecoder().decode(ControlResponse.self, from: Data(refused.standardOutput.utf8)), .refused("unknown module 'XY'"))
        XCTAssertEqual(refused.standardError, "Error: unknown module 'XY'\n")
    }

    func testStatusIsRenderedWithoutColorsOffATerminal() throws {
        let daemon = try ScriptedDaemon { _ in ControlResponse(ok: true, status: sampleReport) }
        let result = try runClusterctl(["--socket", daemon.socketPath, "status", "-m", "AM"])
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertEqual(result.standardOutput, sampleReport.render(colors: false) + "\n")
        XCTAssertEqual(daemon.requests, [ControlRequest(verb: "status", module: "AM")])
    }

    func testUsageErrorsExitWithOneBeforeConnecting() throws {
        let daemon = try ScriptedDaemon()
        for (arguments, message) in [
            (["stop"], "Error: 'stop' needs a module: clusterctl stop -m NAME"),
            (["boot", "off"], "Error: 'boot' needs a module: clusterctl boot -m NAME"),
            (["second", "--yes"], "Error: 'second' needs a module: clusterctl second -m NAME"),
            (["boot", "-m", "AM", "maybe"], "Error: The value 'maybe' is invalid for '<setting>'"),
            (["checker", "-m", "AM", "disable"], "Error: Missing expected argument '<checker>'"),
            (["-H", "node2", "log", "-f"], "Error: log -f follows this node's log file: run it on that node, without -H"),
            (["frobnicate"], "Error: Unexpected argument 'frobnicate'"),
            (["stop", "-m", "AM", "--force"], "Error: Unknown option '--force'"),
        ] {
            let result = try runClusterctl(["--socket", daemon.socketPath] + arguments)
            XCTAssertEqual(result.status, 1, "\(arguments)")
            XCTAssertTrue(result.standardError.hasPrefix(message), "\(arguments): \(result.standardError)")
            XCTAssertEqual(result.standardOutput, "")
        }
        XCTAssertEqual(daemon.requests, [], "nothing was sent")
        XCTAssertEqual(try runClusterctl(["--help"]).status, 0)
    }

    func testNoDaemonExitsWithTwo() throws {
        let scratch = try ScratchDirectory("control")
        let path = scratch.path + "/control.sock"
        let result = try runClusterctl(["--socket", path, "stop", "-m", "AM"])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.standardError, "Error: the mirror daemon is not running (no socket at \(path))\n")
        XCTAssertEqual(result.standardOutput, "")
    }

    func testRefusalExitsWithOne() throws {
        let daemon = try ScriptedDaemon { _ in .refused("prim refused: node2 is PRIM", message: "AM: node1 STOP, node2 PRIM") }
        let result = try runClusterctl(["--socket", daemon.socketPath, "prim", "-m", "AM"])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.standardOutput, "AM: node1 STOP, node2 PRIM\n")
        XCTAssertEqual(result.standardError, "Error: prim refused: node2 is PRIM\n")
    }

    func testSecondWithoutYesShowsWhatWouldBeDiscarded() throws {
        let preview = "node2's changes since 2026-11-26 10:00:00 UTC would be discarded:\n  /srv/am/config.xml\n  /srv/am/db/base/1/16384"
        let daemon = try ScriptedDaemon { request in
            request.yes ? ControlResponse(ok: true, message: "AM: node2 SECOND") : ControlResponse(ok: true, message: preview)
        }
        let unconfirmed = try runClusterctl(["--socket", daemon.socketPath, "second", "-m", "AM"])
        XCTAssertEqual(unconfirmed.status, 1)
        XCTAssertEqual(unconfirmed.standardOutput, preview + "\n")
        XCTAssertEqual(unconfirmed.standardError,
                       "Error: nothing done: rerun with --yes to start this node as secondary and discard what is listed above\n")

        let confirmed = try runClusterctl(["--socket", daemon.socketPath, "second", "--yes", "-m", "AM"])
        XCTAssertEqual(confirmed.status, 0)
        XCTAssertEqual(confirmed.standardOutput, "AM: node2 SECOND\n")
        XCTAssertEqual(daemon.requests.map(\.yes), [false, true])

        // Refused outright (the only up-to-date copy): the reason, not an invitation to confirm.
        daemon.answer { _ in .refused("second refused: node1 holds the only up-to-date copy of AM") }
        let refused = try runClusterctl(["--socket", daemon.socketPath, "second", "-m", "AM"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.standardError, "Error: second refused: node1 holds the only up-to-date copy of AM\n")
    }

    func testLogFollowPrintsTheLastLinesThenWhatIsAdded() throws {
        let scratch = try ScratchDirectory("control-log")
        let logPath = scratch.path + "/mirror.log"
        try (1...15).map { "line \($0)\n" }.joined().write(toFile: logPath, atomically: false, encoding: .utf8)
        let daemon = try ScriptedDaemon { _ in ControlResponse(ok: true, message: "line 15", logFile: logPath) }

        let output = Pipe()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: clusterctlExecutable)
        process.arguments = ["--socket", daemon.socketPath, "log", "-m", "AM", "-f"]
        process.standardOutput = output
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let reader = output.fileHandleForReading
        func read(until suffix: String) -> String {
            var text = ""
            let deadline = Date().addingTimeInterval(10)
            while !text.hasSuffix(suffix), Date() < deadline {
                let data = reader.availableData
                if data.isEmpty { break }
                text += String(decoding: data, as: UTF8.self)
            }
            return text
        }
        XCTAssertEqual(read(until: "line 15\n"), (6...15).map { "line \($0)\n" }.joined())
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: logPath))
        handle.seekToEndOfFile()
        handle.write(Data("line 16\n".utf8))
        try handle.close()
        XCTAssertEqual(read(until: "line 16\n"), "line 16\n")

        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)
        XCTAssertEqual(daemon.requests, [ControlRequest(verb: "log", module: "AM")])
    }
}
