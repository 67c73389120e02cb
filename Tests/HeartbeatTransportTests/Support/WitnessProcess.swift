import Foundation
import Glibc
import ReplTransport
import TestSupport
import XCTest

/// A cluster file with a witness, its key file and a state directory, in a scratch directory.
struct WitnessCluster {
    let scratch: ScratchDirectory
    let file: String
    let key: [UInt8]
    let stateDirectory: String
    let address: NetworkAddress

    init() throws {
        guard geteuid() == 0 else {
            XCTFail("the key file must be owned by root: these tests run as root")
            throw TestFailure("not root")
        }
        scratch = try ScratchDirectory("witness")
        key = Array("witness-test-key-0123456789abcdef0123456789".utf8)
        let keyPath = scratch.path + "/cluster.key"
        guard FileManager.default.createFile(atPath: keyPath, contents: Data(key), attributes: [.posixPermissions: 0o600]) else {
            throw TestFailure("cannot create \(keyPath)")
        }
        stateDirectory = scratch.path + "/state"
        address = NetworkAddress(host: "127.0.0.3", port: try freePort(on: "127.0.0.3", type: SOCK_DGRAM))
        file = scratch.path + "/cluster.toml"
        let text = """
            cluster = "demo"
            key_file = "\(keyPath)"

            [witness]
            address = "\(address)"

            [[node]]
            name = "node1"
            replication = ["127.0.0.1:7788"]

            [[node]]
            name = "node2"
            replication = ["127.0.0.2:7788"]

            [[module]]
            name = "AM"
            directories = ["/srv/am"]

            [[module]]
            name = "DB"
            directories = ["/srv/db"]
            """
        try text.write(toFile: file, atomically: true, encoding: .utf8)
    }
}

/// One `mirror witness` child process, its standard error in a log file; stopped by PID.
final class WitnessProcess {
    let process = Process()
    let logPath: String

    init(_ cluster: WitnessCluster, lease: Double, name: String = "witness") throws {
        logPath = cluster.scratch.path + "/\(name).log"
        guard FileManager.default.createFile(atPath: logPath, contents: nil), let handle = FileHandle(forWritingAtPath: logPath) else {
            throw TestFailure("cannot create \(logPath)")
        }
        process.executableURL = URL(fileURLWithPath: mirrorExecutable)
        process.arguments = ["witness", "--config", cluster.file, "--lease", "\(lease)", "--state-dir", cluster.stateDirectory]
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while !log.contains("listening on") {
            guard process.isRunning, Date() < deadline else {
                stop()
                throw TestFailure("mirror witness did not start:\n\(log)")
            }
            usleep(10_000)
        }
    }

    deinit { stop() }

    var pid: pid_t { process.processIdentifier }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func lines(containing text: String) -> [String] { log.split(separator: "\n").map(String.init).filter { $0.contains(text) } }

    /// Sends `signal` by PID and waits for the exit (SIGKILL after 10 s); returns the exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM) -> Int32 {
        if process.isRunning {
            kill(pid, signal)
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning { kill(pid, SIGKILL) }
        }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
