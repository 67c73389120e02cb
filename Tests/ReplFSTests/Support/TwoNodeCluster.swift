import Foundation
import Glibc
import TestSupport
import XCTest

/// Two nodes of a cluster on this machine (127.0.0.1 and 127.0.0.2, free ports, each with its own
/// path prefix under a scratch directory), run as `mirror run --foreground` child processes and
/// stopped by PID when the test ends, whatever happened.
final class TwoNodeCluster {
    let scratch: ScratchDirectory
    let configPath: String
    /// The module's directory as each node sees it.
    let primaryDirectory: String
    let secondaryDirectory: String
    private(set) var secondary: NodeProcess?
    private(set) var primary: NodeProcess?
    /// The cluster's name, the pre-shared key (the key file's bytes) and the module, as both nodes have them.
    static let clusterName = "repltest"
    static let key = String(repeating: "5a", count: 32)
    static let moduleName = "data"
    /// Where the secondary accepts the replication connection.
    let secondaryPort: UInt16
    private let configText: String
    private let keyPath: String

    init() throws {
        scratch = try ScratchDirectory("repl")
        primaryDirectory = try scratch.sub("node1/data")
        secondaryDirectory = try scratch.sub("node2/data")
        keyPath = scratch.path + "/cluster.key"
        try Self.writeKeyFile(keyPath, key: Self.key)
        configPath = scratch.path + "/cluster.toml"
        secondaryPort = try freePort(on: "127.0.0.2")
        configText = """
            cluster = "\(Self.clusterName)"
            key_file = "\(keyPath)"
            ack_timeout = 3

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
    /// replaced by `secondaryAddress` ("host:port", e.g. a relay's); returns its path.
    func variantConfig(label: String, key: String? = nil, secondaryAddress: String? = nil) throws -> String {
        var text = configText
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

    /// Starts the secondary (node2), then the primary (node1), and waits until both mounts answer
    /// (the secondary's is read-only).
    func start() throws {
        try startSecondary()
        try startPrimary()
    }

    /// The relay the primary's connection goes through, if started with one.
    private(set) var relay: DelayingRelay?

    /// Starts the secondary, then the primary connected to it through a ``DelayingRelay`` that
    /// holds each frame for `delay` (a network the crash of ``crashPrimary(killingAlso:)`` can lose);
    /// with `delayed` false, only once `relay.delayFromNowOn()` is called.
    func start(throughRelayWithDelay delay: TimeInterval, delayed: Bool = true) throws {
        let started = try DelayingRelay(to: secondaryPort, delay: delay, delayed: delayed, scratch: scratch)
        relay = started
        try startSecondary()
        try startPrimary(config: try variantConfig(label: "node1-via-relay", secondaryAddress: started.address))
    }

    /// The crash of the primary's machine: freezes the relay if there is one (nothing passes
    /// any more), kills the primary daemon and then `pids` (the applications on its mount) with
    /// SIGKILL, detaches the dead mount, and kills the relay with whatever it still held.
    func crashPrimary(killingAlso pids: [pid_t]) {
        relay?.freeze()
        if let primary, primary.process.isRunning { kill(primary.pid, SIGKILL) }
        for pid in pids where pid > 0 { kill(pid, SIGKILL) }
        killPrimary()
        relay?.stop()
    }

    /// Starts the secondary (node2) and waits until its read-only mount answers.
    func startSecondary() throws {
        let secondaryStarted = try NodeProcess(node: "node2", role: "secondary", config: configPath, log: scratch.path + "/node2.log")
        secondary = secondaryStarted
        try waitForMount(of: secondaryDirectory, by: secondaryStarted, role: "secondary")
    }

    /// Starts the primary (node1), with `config` (the cluster's own by default), and waits until
    /// its mount answers.
    func startPrimary(config: String? = nil) throws {
        try waitForMount(of: primaryDirectory, by: try launchPrimary(config: config), role: "primary")
    }

    /// Starts the primary (node1) with `config` (the cluster's own by default) without waiting for
    /// anything; its log goes to `log` (node1.log by default). Stopped with the cluster.
    @discardableResult
    func launchPrimary(config: String? = nil, log: String? = nil) throws -> NodeProcess {
        primary?.stop()
        let started = try NodeProcess(node: "node1", role: "primary", config: config ?? configPath,
                                      log: log ?? scratch.path + "/node1.log")
        primary = started
        return started
    }

    private func waitForMount(of directory: String, by node: NodeProcess, role: String) throws {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if !node.process.isRunning { throw TestFailure("the \(role) exited before mounting:\n\(node.log)") }
            if isReplFSMounted(directory) {
                var st = stat()
                if stat(directory, &st) == 0 { return }
            }
            usleep(20_000)
        }
        throw TestFailure("the \(role)'s mount did not answer within 30 s:\n\(node.log)")
    }

    var primaryLog: String { primary?.log ?? "" }
    var secondaryLog: String { secondary?.log ?? "" }

    /// Kills the secondary with SIGKILL, as a crash.
    func killSecondary() { secondary?.kill9() }

    /// Kills the primary daemon with SIGKILL, as a crash, and detaches the dead mount it leaves
    /// ("Transport endpoint is not connected").
    func killPrimary() {
        primary?.kill9()
        if isReplFSMounted(primaryDirectory) { umount2(primaryDirectory, Int32(MNT_DETACH)) }
    }

    /// Stops the secondary alone (SIGTERM); its copy is then the plain directory.
    func stopSecondary() {
        secondary?.stop()
        if isReplFSMounted(secondaryDirectory) { umount2(secondaryDirectory, Int32(MNT_DETACH)) }
    }

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

    /// Stops the primary, then the secondary; their mounts go with them (and the relay).
    func stop() {
        primary?.stop()
        if isReplFSMounted(primaryDirectory) { umount2(primaryDirectory, Int32(MNT_DETACH)) }
        relay?.stop()
        secondary?.stop()
        if isReplFSMounted(secondaryDirectory) { umount2(secondaryDirectory, Int32(MNT_DETACH)) }
    }

    deinit { stop() }
}

/// One `mirror run --foreground` child process, its standard error in a log file.
final class NodeProcess {
    let process = Process()
    let logPath: String

    init(node: String, role: String, config: String, log: String) throws {
        logPath = log
        guard FileManager.default.createFile(atPath: log, contents: nil), let handle = FileHandle(forWritingAtPath: log) else {
            throw TestFailure("cannot create \(log)")
        }
        process.executableURL = URL(fileURLWithPath: mirrorExecutable)
        process.arguments = ["run", "--config", config, "--node", node, "--role", role, "--foreground"]
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
            process.waitUntilExit()
        }
    }

    /// SIGKILL by PID, as a crash.
    func kill9() {
        guard process.isRunning else { return }
        kill(pid, SIGKILL)
        process.waitUntilExit()
    }
}

/// A TCP port nobody listens on at `host` now.
func freePort(on host: String) throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    inet_pton(AF_INET, host, &address.sin_addr)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Bool in
            bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
        }
    }
    guard bound else { throw TestFailure("bind \(host): \(String(cString: strerror(errno)))") }
    return UInt16(bigEndian: address.sin_port)
}
