import Foundation
import Glibc
import TestSupport
import XCTest

/// Two nodes of a cluster on this machine (127.0.0.1 and 127.0.0.2, free ports, each with its own
/// path prefix, hence its own copy and state directory, under a scratch directory), run as
/// `mirror run --foreground` child processes and stopped by PID when the test ends, whatever
/// happened. Each node can be started as primary or secondary, stopped, killed and restarted.
final class TwoNodeCluster {
    let scratch: ScratchDirectory
    let configPath: String
    /// The cluster's name, the pre-shared key (the key file's bytes) and the module, as both nodes have them.
    static let clusterName = "repltest"
    static let key = String(repeating: "5a", count: 32)
    static let moduleName = "data"
    /// Where the secondary (node2) accepts replication connections.
    let secondaryPort: UInt16
    private let configText: String
    private let keyPath: String
    /// The relay the primary's connection goes through, if started with one.
    private(set) var relay: DelayingRelay?
    /// Each node's copy of the module's directory (its mount point while it runs).
    let directories: [String: String]
    private(set) var processes: [String: NodeProcess] = [:]
    private var logCounter = 0

    /// The module's directory as node1 (the usual primary) and node2 see it.
    var primaryDirectory: String { directories["node1"]! }
    var secondaryDirectory: String { directories["node2"]! }

    init(ackTimeout: Int = 3) throws {
        scratch = try ScratchDirectory("repl")
        directories = ["node1": try scratch.sub("node1/data"), "node2": try scratch.sub("node2/data")]
        keyPath = scratch.path + "/cluster.key"
        try Self.writeKeyFile(keyPath, key: Self.key)
        configPath = scratch.path + "/cluster.toml"
        secondaryPort = try freePort(on: "127.0.0.2")
        configText = """
            cluster = "\(Self.clusterName)"
            key_file = "\(keyPath)"
            ack_timeout = \(ackTimeout)

            [[node]]
            name = "node1"
            replication = ["127.0.0.1:\(try freePort(on: "127.0.0.1"))"]
            path_prefix = "\(scratch.path)/node1"

            [[node]]
            name = "node2"
            replication = ["127.0.0.2:\(secondaryPort)"]
            path_prefix = "\(scratch.path)/node2"

            [[module]]
            name = "\(Self.moduleName)"
            directories = ["/data"]
            """
        try configText.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    private static func writeKeyFile(_ path: String, key: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(key.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw TestFailure("cannot write \(path)")
        }
    }

    /// A copy of the cluster file for one node, named `label`: with its key file holding `key`
    /// (e.g. a node set up with the wrong key), and/or the secondary's replication address
    /// replaced by `secondaryAddress` ("host:port", e.g. a relay's), and/or node1's path prefix
    /// replaced by `primaryPrefix` (a second machine claiming to be node1); returns its path.
    func variantConfig(label: String, key: String? = nil, secondaryAddress: String? = nil,
                       primaryPrefix: String? = nil) throws -> String {
        var text = configText
        if let primaryPrefix {
            text = text.replacingOccurrences(of: "path_prefix = \"\(scratch.path)/node1\"", with: "path_prefix = \"\(primaryPrefix)\"")
        }
        if let key {
            let otherKeyPath = scratch.path + "/\(label).key"
            try Self.writeKeyFile(otherKeyPath, key: key)
            text = text.replacingOccurrences(of: "key_file = \"\(keyPath)\"", with: "key_file = \"\(otherKeyPath)\"")
        }
        if let secondaryAddress {
            text = text.replacingOccurrences(of: "\"127.0.0.2:\(secondaryPort)\"", with: "\"\(secondaryAddress)\"")
        }
        let path = scratch.path + "/\(label).toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The running (or last) process of node1 and of node2.
    var primary: NodeProcess? { processes["node1"] }
    var secondary: NodeProcess? { processes["node2"] }

    /// Starts node2 as secondary, then node1 as primary, and waits until node2's copy is up to
    /// date (the first resync done) and both mounts answer.
    func start() throws {
        try startSecondary("node2")
        try startPrimary("node1")
        try waitForLog(of: "node1", containing: "is up to date", timeout: 60)
    }

    /// Starts node2 as secondary, then node1 as primary connected to it through a
    /// ``DelayingRelay`` that holds each frame for `delay` (a network the crash of
    /// ``crashPrimary(killingAlso:)`` can lose); with `delayed` false, only once
    /// `relay.delayFromNowOn()` is called. Waits for the first resync.
    func start(throughRelayWithDelay delay: TimeInterval, delayed: Bool = true) throws {
        let started = try DelayingRelay(to: secondaryPort, delay: delay, delayed: delayed, scratch: scratch)
        relay = started
        try startSecondary("node2")
        try startPrimary("node1", config: try variantConfig(label: "node1-via-relay", secondaryAddress: started.address))
        try waitForLog(of: "node1", containing: "is up to date", timeout: 60)
    }

    /// The crash of the primary's machine: freezes the relay if there is one (nothing passes
    /// any more), kills the primary daemon and then `pids` (the applications on its mount) with
    /// SIGKILL, detaches the dead mount, and kills the relay with whatever it still held.
    func crashPrimary(killingAlso pids: [pid_t]) {
        relay?.freeze()
        if let primary, primary.process.isRunning { kill(primary.pid, SIGKILL) }
        for pid in pids where pid > 0 { kill(pid, SIGKILL) }
        kill9("node1")
        relay?.stop()
    }

    /// Starts `node` as secondary and waits for its read-only mount.
    func startSecondary(_ node: String = "node2") throws {
        try startNode(node, arguments: ["--role", "secondary"])
    }

    /// Starts `node` as primary, with `config` (the cluster's own by default), and waits for its
    /// mount (the peer waited for `peerWait` seconds).
    func startPrimary(_ node: String = "node1", peerWait: Double = 10, force: Bool = false, config: String? = nil) throws {
        try startNode(node, arguments: ["--role", "primary", "--peer-wait", "\(peerWait)"] + (force ? ["--force"] : []),
                      config: config)
    }

    /// Starts node1 as primary with `config` (the cluster's own by default) without waiting for
    /// anything; its log goes to `log`. Stopped with the cluster.
    @discardableResult
    func launchPrimary(config: String? = nil, log: String? = nil) throws -> NodeProcess {
        primary?.stop()
        let started = try NodeProcess(node: "node1", arguments: ["--role", "primary"], config: config ?? configPath,
                                      log: log ?? nextLogPath("node1"))
        processes["node1"] = started
        return started
    }

    /// Runs `mirror run` for `node` until it exits (a start that must be refused); its log and status.
    func runToExit(_ node: String, role: String, peerWait: Double = 10) throws -> (status: Int32, log: String) {
        let process = try NodeProcess(node: node, arguments: ["--role", role, "--peer-wait", "\(peerWait)"],
                                      config: configPath, log: nextLogPath(node))
        processes[node] = process
        process.process.waitUntilExit()
        return (process.process.terminationStatus, process.log)
    }

    private func startNode(_ node: String, arguments: [String], config: String? = nil) throws {
        let process = try NodeProcess(node: node, arguments: arguments, config: config ?? configPath, log: nextLogPath(node))
        processes[node] = process
        try waitForMount(of: directories[node]!, by: process, role: node)
    }

    private func nextLogPath(_ node: String) -> String {
        logCounter += 1
        return scratch.path + "/\(node)-\(logCounter).log"
    }

    private func waitForMount(of directory: String, by node: NodeProcess, role: String) throws {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if !node.process.isRunning { throw TestFailure("\(role) exited before mounting:\n\(node.log)") }
            if isReplFSMounted(directory) {
                var st = stat()
                if stat(directory, &st) == 0 { return }
            }
            usleep(20_000)
        }
        throw TestFailure("\(role)'s mount did not answer within 30 s:\n\(node.log)")
    }

    /// How many lines of the last process of `node` contain `text`.
    func occurrences(of text: String, inLogOf node: String) -> Int {
        log(of: node).split(separator: "\n").filter { $0.contains(text) }.count
    }

    /// Waits until the running process of `node` logged `text` on more than `existing` lines
    /// (pass what ``occurrences(of:inLogOf:)`` said before the awaited event).
    func waitForLog(of node: String, containing text: String, beyond existing: Int = 0, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if occurrences(of: text, inLogOf: node) > existing { return }
            if let process = processes[node], !process.process.isRunning {
                throw TestFailure("\(node) exited while waiting for '\(text)':\n\(log(of: node))")
            }
            usleep(50_000)
        }
        throw TestFailure("\(node) did not log '\(text)' within \(timeout) s:\n\(log(of: node).suffix(4000))")
    }

    /// The log of the last process of `node`.
    func log(of node: String) -> String { processes[node]?.log ?? "" }

    var primaryLog: String { log(of: "node1") }
    var secondaryLog: String { log(of: "node2") }

    /// The state file of the module on `node` (data generations), as text.
    func generations(of node: String) -> String {
        (try? String(contentsOfFile: scratch.path + "/\(node)/var/lib/mirror/data/0/generations", encoding: .utf8)) ?? ""
    }

    /// Kills `node` with SIGKILL, as a crash; its stale mount is detached.
    func kill9(_ node: String) {
        processes[node]?.kill9()
        if isReplFSMounted(directories[node]!) { umount2(directories[node]!, Int32(MNT_DETACH)) }
    }

    /// Kills the secondary (node2) with SIGKILL, as a crash.
    func killSecondary() { kill9("node2") }

    /// Kills the primary daemon (node1) with SIGKILL, as a crash, and detaches the dead mount.
    func killPrimary() { kill9("node1") }

    /// Stops the secondary (node2) alone (SIGTERM); its copy is then the plain directory.
    func stopSecondary() { stop("node2") }

    /// Waits up to `timeout` for `count` lines of the secondary's log containing `text`; returns
    /// the lines found.
    @discardableResult
    func waitForSecondaryLog(_ text: String, count: Int = 1, timeout: TimeInterval = 10) -> [String] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let lines = secondaryLog.split(separator: "\n").map(String.init).filter { $0.contains(text) }
            if lines.count >= count || Date() >= deadline { return lines }
            usleep(20_000)
        }
    }

    /// Stops `node` with SIGTERM; its mount goes with it.
    func stop(_ node: String) {
        processes[node]?.stop()
        if isReplFSMounted(directories[node]!) { umount2(directories[node]!, Int32(MNT_DETACH)) }
    }

    /// Stops node1, then the relay if any, then node2.
    func stop() {
        stop("node1")
        relay?.stop()
        stop("node2")
    }

    deinit { stop() }
}

/// One `mirror run --foreground` child process, its standard error in a log file.
final class NodeProcess {
    let process = Process()
    let logPath: String

    init(node: String, arguments: [String], config: String, log: String) throws {
        logPath = log
        guard FileManager.default.createFile(atPath: log, contents: nil), let handle = FileHandle(forWritingAtPath: log) else {
            throw TestFailure("cannot create \(log)")
        }
        process.executableURL = URL(fileURLWithPath: mirrorExecutable)
        process.arguments = ["run", "--config", config, "--node", node, "--foreground"] + arguments
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var pid: pid_t { process.processIdentifier }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGTERM by PID, SIGKILL after 10 s.
    func stop() {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            waitForExit(of: process)
        }
    }

    /// SIGKILL by PID, as a crash.
    func kill9() {
        guard process.isRunning else { return }
        kill(pid, SIGKILL)
        waitForExit(of: process)
    }
}

