import ControlChannel
import Foundation
import Glibc
import TestSupport
import XCTest

final class ControlServerTests: XCTestCase {
    private func mode(_ path: String) -> mode_t {
        var status = stat()
        XCTAssertEqual(lstat(path, &status), 0, path)
        return status.st_mode
    }

    func testSocketIsRootOnlyInAFreshDirectory() throws {
        let daemon = try ScriptedDaemon()
        let socketMode = mode(daemon.socketPath)
        XCTAssertEqual(socketMode & S_IFMT, S_IFSOCK)
        XCTAssertEqual(socketMode & 0o7777, 0o600)
        XCTAssertEqual(mode(daemon.scratch.path + "/run") & 0o7777, 0o700)

        let response = try ControlClient.send(ControlRequest(verb: "status", module: "AM"), to: daemon.socketPath, timeout: .seconds(5))
        XCTAssertEqual(response, ControlResponse(ok: true, message: "done"))
        XCTAssertEqual(daemon.requests, [ControlRequest(verb: "status", module: "AM")])

        daemon.server.stop()
        XCTAssertNotEqual(access(daemon.socketPath, F_OK), 0, "stop removes the socket")
        XCTAssertThrowsError(try ControlClient.send(ControlRequest(verb: "status"), to: daemon.socketPath, timeout: .seconds(5))) {
            XCTAssertEqual($0 as? ControlClientError, .notRunning(path: daemon.socketPath, socketExists: false))
            XCTAssertEqual("\($0)", "the mirror daemon is not running (no socket at \(daemon.socketPath))")
        }
    }

    func testNonRootClientIsRefused() throws {
        let daemon = try ScriptedDaemon()
        let nobody: uid_t = 65534
        // As installed: the socket (0600) cannot even be opened.
        let denied = try runClusterctl(["--socket", daemon.socketPath, "status"], asUser: nobody)
        XCTAssertEqual(denied.status, 2)
        XCTAssertEqual(denied.standardError, "Error: permission denied: clusterctl must run as root\n")

        // Opened up by mistake: the daemon itself refuses by the peer's uid.
        XCTAssertEqual(chmod(daemon.scratch.path + "/run", 0o755), 0)
        XCTAssertEqual(chmod(daemon.socketPath, 0o666), 0)
        let refused = try runClusterctl(["--socket", daemon.socketPath, "stop", "-m", "AM"], asUser: nobody)
        XCTAssertEqual(refused.status, 2)
        XCTAssertEqual(refused.standardError, "Error: permission denied: clusterctl must run as root\n")
        XCTAssertEqual(daemon.requests, [], "the handler never sees a non-root request")

        let asRoot = try runClusterctl(["--socket", daemon.socketPath, "stop", "-m", "AM"])
        XCTAssertEqual(asRoot.status, 0)
        XCTAssertEqual(daemon.requests, [ControlRequest(verb: "stop", module: "AM")])
    }

    func testHostileClientsGetAnAnswerAndTheServerGoesOn() throws {
        let daemon = try ScriptedDaemon(limits: ControlServer.Limits(requestTimeout: .milliseconds(500)))

        let garbage = try RawConnection(to: daemon.socketPath)
        garbage.send(Array("status -m AM\n".utf8))
        XCTAssertEqual(try garbage.response(), .refused("not a control request: malformed JSON: not JSON"))

        let wrongShape = try RawConnection(to: daemon.socketPath)
        wrongShape.send(Array(#"{"verb":["status"]}"#.utf8) + [10])
        XCTAssertEqual(try wrongShape.response(), .refused("not a control request: malformed JSON: 'verb' is not a string"))

        let oversized = try RawConnection(to: daemon.socketPath)
        oversized.send(Array(#"{"verb":"status","module":""#.utf8) + [UInt8](repeating: UInt8(ascii: "A"), count: 70_000) + Array("\"}\n".utf8))
        XCTAssertEqual(try oversized.response(), .refused("request larger than 65536 bytes"))

        // A silent client is answered after the request timeout; others are served meanwhile.
        let silent = try RawConnection(to: daemon.socketPath)
        let started = ContinuousClock.now
        XCTAssertEqual(try ControlClient.send(ControlRequest(verb: "status"), to: daemon.socketPath, timeout: .seconds(5)).ok, true)
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(400), "not held up by the silent client")
        XCTAssertEqual(try silent.response(), .refused("no request received within 0.5 seconds"))
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - started, .milliseconds(450))

        // A client that closes at once, or sends half a line and closes.
        _ = try RawConnection(to: daemon.socketPath)
        let half = try RawConnection(to: daemon.socketPath)
        half.send(Array(#"{"verb":"sta"#.utf8))
        shutdown(half.fd, Int32(SHUT_WR))
        XCTAssertEqual(try half.response(), .refused("not a control request: malformed JSON: not JSON"))

        // A request without its newline, the writer's side closed: still one request.
        let unterminated = try RawConnection(to: daemon.socketPath)
        unterminated.send(Array(#"{"verb":"verify","module":"AM"}"#.utf8))
        shutdown(unterminated.fd, Int32(SHUT_WR))
        XCTAssertEqual(try unterminated.response(), ControlResponse(ok: true, message: "done"))

        XCTAssertEqual(try ControlClient.send(ControlRequest(verb: "log"), to: daemon.socketPath, timeout: .seconds(5)).ok, true)
        XCTAssertEqual(daemon.requests.map(\.verb), ["status", "verify", "log"])
    }

    func testConnectionsBeyondTheLimitAreToldTheDaemonIsBusy() throws {
        let daemon = try ScriptedDaemon(limits: ControlServer.Limits(requestTimeout: .seconds(2), maximumConnections: 2))
        let first = try RawConnection(to: daemon.socketPath), second = try RawConnection(to: daemon.socketPath)
        usleep(100_000)  // both admitted
        XCTAssertEqual(try ControlClient.send(ControlRequest(verb: "status"), to: daemon.socketPath, timeout: .seconds(5)),
                       .refused("the daemon is busy: 2 control requests are being served; try again"))
        first.send(Array(#"{"verb":"status"}"#.utf8) + [10])
        XCTAssertTrue(try first.response().ok)
        usleep(100_000)  // its thread has finished
        XCTAssertTrue(try ControlClient.send(ControlRequest(verb: "status"), to: daemon.socketPath, timeout: .seconds(5)).ok)
        withExtendedLifetime(second) {}
    }

    func testStaleSocketIsReplacedLiveOneIsNot() throws {
        let scratch = try ScratchDirectory("control")
        let path = scratch.path + "/control.sock"
        // A socket file nothing listens on, as a killed daemon leaves it.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0)
        close(fd)
        XCTAssertThrowsError(try ControlClient.send(ControlRequest(verb: "status"), to: path, timeout: .seconds(5))) {
            XCTAssertEqual("\($0)", "the mirror daemon is not running (nothing answers at \(path))")
        }

        let server = try ControlServer(path: path) { _ in ControlResponse(ok: true, message: "first") }
        XCTAssertEqual(try ControlClient.send(ControlRequest(verb: "status"), to: path, timeout: .seconds(5)).message, "first")

        XCTAssertThrowsError(try ControlServer(path: path) { _ in ControlResponse(ok: true, message: "second") }) {
            XCTAssertEqual("\($0)", "another mirror daemon already serves \(path)")
        }
        XCTAssertEqual(try ControlClient.send(ControlRequest(verb: "status"), to: path, timeout: .seconds(5)).message, "first",
                       "the live server keeps its socket")
        server.stop()

        let plainFile = scratch.path + "/not-a-socket"
        XCTAssertTrue(FileManager.default.createFile(atPath: plainFile, contents: Data("keep".utf8)))
        XCTAssertThrowsError(try ControlServer(path: plainFile) { _ in ControlResponse(ok: true) }) {
            XCTAssertEqual("\($0)", "control socket \(plainFile) exists and is not a socket; remove it if it is not needed")
        }
        XCTAssertEqual(try String(contentsOfFile: plainFile, encoding: .utf8), "keep")
    }
}
