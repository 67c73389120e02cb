import ControlChannel
import Foundation
import Glibc
import TestSupport
import XCTest

/// Two cluster daemons (`mirror run` without `--role`) on this machine: node1 on 127.0.0.1 and
/// node2 on 127.0.0.2 (free ports), each with its own path prefix under a scratch directory, so
/// its own copies, state directory and control socket. Each module's application is a small
/// shell service (start and stop scripts, a process with a pid file in the replicated
/// directory) that counts its starts. Daemons are stopped by PID when the lab goes away.
final class ClusterLab {
    /// A module of the lab's cluster file.
    struct ModuleSpec {
        var name: String
        var checkers: String = ""
        var processMonitor = false
        /// Replicated directories (default: /srv/NAME, the lab's shell service's).
        var directories: [String]? = nil
        /// Start and stop scripts (default: the lab's shell service).
        var scripts: (start: String, stop: String)? = nil

        var replicated: [String] { directories ?? ["/srv/\(name)"] }
    }

    let scratch: ScratchDirectory
    let configPath: String
    let modules: [ModuleSpec]
    static let nodes = ["node1", "node2"]
    private var processes: [String: Process] = [:]
    private var logCounter = 0

    /// - Parameter extra: more top-level keys of the cluster file (e.g. timeouts).
    init(modules: [ModuleSpec] = [ModuleSpec(name: "AM")], heartbeatInterval: Double = 0.5, heartbeatTimeout: Double = 3,
         extra: String = "") throws {
        scratch = try ScratchDirectory("cluster")
        self.modules = modules
        let keyPath = scratch.path + "/cluster.key"
        guard FileManager.default.createFile(atPath: keyPath, contents: Data(String(repeating: "7e", count: 32).utf8),
                                             attributes: [.posixPermissions: 0o600]) else { throw TestFailure("cannot write the key") }
        try Self.writeScripts(in: try scratch.sub("scripts"))
        var text = """
            cluster = "labcluster"
            key_file = "\(keyPath)"
            heartbeat_interval = \(heartbeatInterval)
            heartbeat_timeout = \(heartbeatTimeout)
            ack_timeout = 2
            \(extra)

            """
        for (index, node) in Self.nodes.enumerated() {
            let host = "127.0.0.\(index + 1)"
            text += """
                [[node]]
                name = "\(node)"
                replication = ["\(host):\(try freePort(on: host, type: SOCK_STREAM))"]
                heartbeat = ["\(host):\(try freePort(on: host, type: SOCK_DGRAM))"]
                path_prefix = "\(scratch.path)/\(node)"

                """
            for module in modules {
                for directory in module.replicated { _ = try scratch.sub(node + directory) }
                _ = try scratch.sub("\(node)/log")
            }
        }
        for module in modules {
            text += """
                [[module]]
                name = "\(module.name)"
                directories = [\(module.replicated.map { "\"\($0)\"" }.joined(separator: ", "))]
                start = "\(module.scripts?.start ?? scratch.path + "/scripts/start")"
                stop = "\(module.scripts?.stop ?? scratch.path + "/scripts/stop")"

                """
            if module.processMonitor {
                text += """
                    [[module.process]]
                    name = "app"
                    pid_file = "/srv/\(module.name)/app.pid"
                    max_restarts = 2
                    restart_window = 60

                    """
            }
            text += module.checkers
        }
        configPath = scratch.path + "/cluster.toml"
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// The application: a `sleep` whose pid is in the replicated directory (written through the
    /// mount, so only where it is read-write), and one line per start in the node's log.
    private static func writeScripts(in directory: String) throws {
        let start = """
            #!/bin/sh
            dir="$MIRROR_PATH_PREFIX/srv/$MIRROR_MODULE"
            echo "start $MIRROR_NODE" >> "$MIRROR_PATH_PREFIX/log/$MIRROR_MODULE.starts"
            setsid sleep 100000 </dev/null >/dev/null 2>&1 &
            echo $! > "$dir/app.pid"
            echo $! > "$MIRROR_PATH_PREFIX/log/$MIRROR_MODULE.pid"
            """
        let stop = """
            #!/bin/sh
            dir="$MIRROR_PATH_PREFIX/srv/$MIRROR_MODULE"
            [ -f "$MIRROR_PATH_PREFIX/log/$MIRROR_MODULE.pid" ] && kill "$(cat "$MIRROR_PATH_PREFIX/log/$MIRROR_MODULE.pid")" 2>/dev/null
            rm -f "$dir/app.pid" "$MIRROR_PATH_PREFIX/log/$MIRROR_MODULE.pid"
            echo "stop $MIRROR_NODE" >> "$MIRROR_PATH_PREFIX/log/$MIRROR_MODULE.starts"
            exit 0
            """
        for (name, body) in [("start", start), ("stop", stop)] {
            let path = directory + "/" + name
            try (body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
    }

    deinit {
        for (_, process) in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for (_, process) in processes { process.waitUntilExit() }
        for node in Self.nodes {
            for module in modules {
                killApplication(node: node, module: module.name)
                for directory in module.replicated { _ = umount2(path(node, directory), Int32(MNT_DETACH)) }
            }
        }
    }

    // MARK: Daemons

    /// Starts `node`'s daemon and waits for its control socket.
    func start(_ node: String) throws {
        if let running = processes[node], running.isRunning { throw TestFailure("\(node) already runs") }
        logCounter += 1
        let log = "\(scratch.path)/\(node)-\(logCounter).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: mirrorExecutable)
        process.arguments = ["run", "--config", configPath, "--node", node, "--foreground"]
        let handle = FileHandle(forWritingAtPath: log)!
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        processes[node] = process
        logs[node, default: []].append(log)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if !process.isRunning { throw TestFailure("\(node)'s daemon exited: \(self.log(of: node))") }
            if clusterctl(node, ["status", "--json"]).status == 0 { return }
            usleep(100_000)
        }
        throw TestFailure("\(node)'s control socket did not answer within 20 s")
    }

    private(set) var logs: [String: [String]] = [:]

    /// Everything `node`'s daemons logged, in order.
    func log(of node: String) -> String {
        (logs[node] ?? []).compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }.joined(separator: "\n")
    }

    /// Waits until `node`'s log has a line containing `text`; returns that line.
    @discardableResult
    func waitForLog(of node: String, containing text: String, timeout: TimeInterval = 10) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = log(of: node).split(separator: "\n").first(where: { $0.contains(text) }) { return String(line) }
            usleep(100_000)
        }
        throw TestFailure("\(node) did not log \"\(text)\" within \(timeout) s:\n\(log(of: node).suffix(3000))")
    }

    /// SIGTERM and wait until the daemon exited (its modules stopped).
    func stop(_ node: String) {
        guard let process = processes[node], process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }

    /// kill -9 of the daemon and of its application processes; its mounts stay, dead.
    func crash(_ node: String) {
        guard let process = processes[node], process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        for module in modules { killApplication(node: node, module: module.name) }
    }

    private func killApplication(node: String, module: String) {
        let pidFile = "\(scratch.path)/\(node)/log/\(module).pid"
        if let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            kill(pid, SIGKILL)
        }
    }

    // MARK: Control

    /// Runs the built `clusterctl` against `node`'s daemon.
    @discardableResult
    func clusterctl(_ node: String, _ arguments: [String]) -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: clusterctlExecutable)
        process.arguments = ["--socket", socket(of: node)] + arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch { return (-1, "", "\(error)") }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    func socket(of node: String) -> String { "\(scratch.path)/\(node)\(ControlClient.defaultSocketPath)" }

    /// `clusterctl` that must succeed; its output.
    @discardableResult
    func ok(_ node: String, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line) -> String {
        let result = clusterctl(node, arguments)
        XCTAssertEqual(result.status, 0, "clusterctl \(arguments.joined(separator: " ")) on \(node): \(result.output) \(result.errors)",
                       file: file, line: line)
        return result.output
    }

    /// The module's state on `node` as its daemon reports it (nil if the daemon does not answer).
    func state(_ node: String, _ module: String) -> String? {
        let result = clusterctl(node, ["status", "-m", module, "--json"])
        guard result.status == 0, let response = try? ControlJSON.decode(ControlResponse.self, from: Array(result.output.utf8)) else {
            return nil
        }
        return response.status?.modules.first?.localState
    }

    /// Waits until the module is in `first` on node1 and `second` on node2 (nil: daemon down);
    /// returns the seconds it took.
    @discardableResult
    func waitFor(_ module: String, _ first: String?, _ second: String?, timeout: TimeInterval = 20,
                 file: StaticString = #filePath, line: UInt = #line) throws -> TimeInterval {
        let started = Date()
        var last: (String?, String?) = (nil, nil)
        while Date().timeIntervalSince(started) < timeout {
            last = (processes["node1"]?.isRunning == true ? state("node1", module) : nil,
                    processes["node2"]?.isRunning == true ? state("node2", module) : nil)
            if last.0 == first && last.1 == second { return Date().timeIntervalSince(started) }
            usleep(100_000)
        }
        XCTFail("module \(module): wanted (\(first ?? "down"), \(second ?? "down")), still (\(last.0 ?? "down"), \(last.1 ?? "down")) after \(timeout) s\n"
            + "node1:\n\(log(of: "node1").suffix(3000))\nnode2:\n\(log(of: "node2").suffix(3000))", file: file, line: line)
        throw TestFailure("states not reached")
    }

    // MARK: Data

    /// The module's directory on `node` (its mount while the daemon runs).
    func directory(_ node: String, _ module: String) -> String { "\(scratch.path)/\(node)/srv/\(module)" }

    /// `node`'s path prefix (its own copies, state directory, control socket).
    func prefix(_ node: String) -> String { "\(scratch.path)/\(node)" }

    /// A path of the cluster file (a replicated directory, a pid file) as `node` sees it.
    func path(_ node: String, _ clusterPath: String) -> String { prefix(node) + clusterPath }

    /// How many times the application was started on `node`.
    func starts(_ node: String, _ module: String) -> Int {
        let text = (try? String(contentsOfFile: "\(scratch.path)/\(node)/log/\(module).starts", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.hasPrefix("start") }.count
    }

    /// The application's pid on `node` (read through the mount).
    func applicationPID(_ node: String, _ module: String) -> pid_t? {
        (try? String(contentsOfFile: directory(node, module) + "/app.pid", encoding: .utf8))
            .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}

/// The built `clusterctl`, beside `mirror`.
let clusterctlExecutable = URL(fileURLWithPath: mirrorExecutable).deletingLastPathComponent().appendingPathComponent("clusterctl").path

/// A port nobody listens on now at `host`, for a socket of `type`.
func freePort(on host: String, type: __socket_type) throws -> UInt16 {
    let fd = socket(AF_INET, Int32(type.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    inet_pton(AF_INET, host, &address.sin_addr)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestFailure("bind: \(errno)") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
    }
    return UInt16(bigEndian: address.sin_port)
}
