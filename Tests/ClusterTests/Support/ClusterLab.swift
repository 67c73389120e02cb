import ControlChannel
import Foundation
import Glibc
import TestSupport
import XCTest

/// Two cluster daemons (`mirror run` without `--role`) on this machine, each with its own path
/// prefix under a scratch directory, so its own copies, state directory and control socket:
/// either both on loopback (node1 on 127.0.0.1 and node2 on 127.0.0.2, free ports), or each in
/// its network namespace of a ``NetworkLab`` (10.77.0.1 and 10.77.0.2, daemons run under
/// `nsenter --net`, which keeps their FUSE mounts visible), where virtual IPs move between the
/// nodes' `veth-am` and a client namespace follows them. By default each module's application is
/// a small shell service (start and stop scripts, a process with a pid file in the replicated
/// directory) that counts its starts; a module may bring its own scripts instead. Daemons, and
/// every process of the applications they started, are killed by PID when the lab goes away;
/// then the namespaces are deleted.
final class ClusterLab {
    /// A module of the lab's cluster file.
    struct ModuleSpec {
        var name: String
        var checkers: String = ""
        var processMonitor = false
        /// `[[module.vip]]` entries: address with prefix length ("10.77.0.100/24") and interface.
        var virtualIPs: [(address: String, interface: String)] = []
        /// The application's start and stop scripts (their text); nil: the lab's `sleep` service.
        /// Like the lab's, they record the application's leading process (a `setsid` daemon, a
        /// postmaster) in `$MIRROR_PATH_PREFIX/log/$MIRROR_MODULE.pid`, so that the lab can kill
        /// it with its session and children by PID (``crash(_:)``, teardown).
        var scripts: (start: String, stop: String)?
        /// Replicated directories (default: /srv/NAME, the lab's shell service's).
        var directories: [String]? = nil

        var replicated: [String] { directories ?? ["/srv/\(name)"] }
    }

    /// Where the daemons run.
    enum Network {
        /// Both in this namespace: node1 on 127.0.0.1, node2 on 127.0.0.2 (free ports).
        case loopback
        /// node1 and node2 each in its namespace of the lab (`nsenter --net`), on the lab's
        /// addresses, fixed ports; the lab is torn down with the cluster.
        case namespaces(NetworkLab)
    }

    let scratch: ScratchDirectory
    let configPath: String
    let modules: [ModuleSpec]
    let network: Network
    static let nodes = ["node1", "node2"]
    private var processes: [String: Process] = [:]
    /// Each node's health endpoint (`health` in the cluster file).
    private(set) var healthPorts: [String: UInt16] = [:]
    private(set) var replicationPorts: [String: UInt16] = [:]
    private var logCounter = 0
    private var tornDown = false

    /// - Parameter extra: more of the cluster file before the nodes (e.g. a `[witness]` table).
    init(modules: [ModuleSpec] = [ModuleSpec(name: "AM")], heartbeatInterval: Double = 0.5, heartbeatTimeout: Double = 3,
         extra: String = "", network: Network = .loopback) throws {
        try requireRoot("the cluster daemons mount FUSE filesystems (and in namespaces, add addresses)")
        try requireFUSE()
        scratch = try ScratchDirectory("cluster")
        self.modules = modules
        self.network = network
        configPath = scratch.path + "/cluster.toml"
        let keyPath = scratch.path + "/cluster.key"
        guard FileManager.default.createFile(atPath: keyPath, contents: Data(String(repeating: "7e", count: 32).utf8),
                                             attributes: [.posixPermissions: 0o600]) else { throw TestFailure("cannot write the key") }
        try Self.writeScripts(in: try scratch.sub("scripts"))
        for module in modules {
            if let scripts = module.scripts {
                try Self.writeScripts(in: try scratch.sub("scripts/\(module.name)"), start: scripts.start, stop: scripts.stop)
            }
        }
        var text = """
            cluster = "labcluster"
            key_file = "\(keyPath)"
            heartbeat_interval = \(heartbeatInterval)
            heartbeat_timeout = \(heartbeatTimeout)
            ack_timeout = 2

            """
        // Tables such as [witness] come after the top-level keys.
        text += extra + "\n\n"
        for node in Self.nodes {
            let host = address(of: node)
            // The health endpoint is asked from this namespace: only on loopback.
            if case .loopback = network { healthPorts[node] = try freePort(on: host, type: SOCK_STREAM) }
            replicationPorts[node] = try port(on: host, type: SOCK_STREAM)
            text += """
                [[node]]
                name = "\(node)"
                replication = ["\(host):\(replicationPorts[node]!)"]
                heartbeat = ["\(host):\(try port(on: host, type: SOCK_DGRAM))"]
                path_prefix = "\(scratch.path)/\(node)"
                \(healthPorts[node].map { "health = \"\(host):\($0)\"" } ?? "")

                """
            for module in modules {
                for directory in module.replicated { _ = try scratch.sub(node + directory) }
                _ = try scratch.sub("\(node)/log")
            }
            // The prefix stands for the node's root: its /run, /var/lib, /var/run and /var/log
            // exist (0755) before the daemon creates its own directories under them (0700).
            for directory in ["run", "var/lib", "var/run", "var/log"] { _ = try scratch.sub("\(node)/\(directory)") }
        }
        for module in modules {
            text += """
                [[module]]
                name = "\(module.name)"
                directories = [\(module.replicated.map { "\"\($0)\"" }.joined(separator: ", "))]
                start = "\(scratch.path)/scripts/\(module.scripts == nil ? "" : module.name + "/")start"
                stop = "\(scratch.path)/scripts/\(module.scripts == nil ? "" : module.name + "/")stop"

                """
            for vip in module.virtualIPs {
                text += """
                    [[module.vip]]
                    address = "\(vip.address)"
                    interface = "\(vip.interface)"

                    """
            }
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
        try writeScripts(in: directory, start: start, stop: stop)
    }

    private static func writeScripts(in directory: String, start: String, stop: String) throws {
        for (name, body) in [("start", start), ("stop", stop)] {
            let path = directory + "/" + name
            try (body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
    }

    deinit { tearDown() }

    /// Kills the daemons and the applications by PID, detaches the mounts and, in namespaces,
    /// deletes the namespaces. Idempotent; also at deinit.
    func tearDown() {
        guard !tornDown else { return }
        tornDown = true
        for (_, process) in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for (_, process) in processes { waitForExit(of: process) }
        for node in Self.nodes {
            for module in modules {
                killApplication(node: node, module: module.name)
                for directory in module.replicated { _ = umount2(path(node, directory), Int32(MNT_DETACH)) }
            }
        }
        if case .namespaces(let lab) = network { lab.tearDown() }
    }

    // MARK: Network

    /// The node's address: its replication and heartbeat host.
    func address(of node: String) -> String {
        switch network {
        case .loopback: return "127.0.0.\(Self.nodes.firstIndex(of: node)! + 1)"
        case .namespaces(let lab): return lab.address(host(of: node))
        }
    }

    /// Cuts the replication connections to and from `node`'s listener (`ss -K`: both ends are
    /// aborted, as a failed link would leave them) while the heartbeats, over UDP, go on.
    func cutReplication(to node: String) throws {
        let endpoint = "\(address(of: node)):\(replicationPorts[node]!)"
        var command = ["ss", "-K", "-t", "state", "established", "( dst \(endpoint) or src \(endpoint) )"]
        if case .namespaces(let lab) = network { command = ["nsenter", "--net=\(lab.namespacePath(host(of: node)))"] + command }
        let result = try runCommand(command, timeout: 10)
        guard result.status == 0 else { throw TestFailure("ss -K failed: \(result.error)") }
        guard result.output.contains(endpoint) else { throw TestFailure("no replication connection to cut: \(result.output)") }
    }

    /// The node's host in the network lab.
    func host(of node: String) -> NetworkLab.Host { node == "node1" ? .node1 : .node2 }

    /// A port for a socket of `type` at `host`: a free one on loopback; in a namespace of its own
    /// nobody else listens, so the usual ones.
    private func port(on host: String, type: __socket_type) throws -> UInt16 {
        switch network {
        case .loopback: return try freePort(on: host, type: type)
        case .namespaces: return type == SOCK_STREAM ? 7788 : 7789
        }
    }

    // MARK: Daemons

    /// Starts `node`'s daemon and waits for its control socket.
    func start(_ node: String) throws {
        if let running = processes[node], running.isRunning, processIsAlive(running.processIdentifier) { throw TestFailure("\(node) already runs") }
        logCounter += 1
        let log = "\(scratch.path)/\(node)-\(logCounter).log"
        guard FileManager.default.createFile(atPath: log, contents: nil) else { throw TestFailure("cannot create \(log)") }
        let process = Process()
        let arguments = ["run", "--config", configPath, "--node", node, "--foreground"]
        switch network {
        case .loopback:
            process.executableURL = URL(fileURLWithPath: mirrorExecutable)
            process.arguments = arguments
        case .namespaces(let lab):
            // nsenter enters the network namespace only and execs the daemon (same PID), whose
            // mounts stay visible to the test.
            process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
            process.arguments = ["--net=\(lab.namespacePath(host(of: node)))", mirrorExecutable] + arguments
        }
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

    /// Waits until `node`'s log has `count` lines containing `text`; returns the `count`th.
    @discardableResult
    func waitForLog(of node: String, containing text: String, count: Int, timeout: TimeInterval = 10) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let lines = log(of: node).split(separator: "\n").filter { $0.contains(text) }
            if lines.count >= count { return String(lines[count - 1]) }
            usleep(50_000)
        }
        throw TestFailure("\(node) did not log \"\(text)\" \(count) times within \(timeout) s:\n\(log(of: node).suffix(3000))")
    }

    /// Waits until `node` has completed its `count`th takeover since the lab started (a module
    /// became PRIM or ALONE there and every action of that step is done: mount, virtual IPs,
    /// start script; the daemon then logs its timeline); returns that timeline line.
    @discardableResult
    func waitForTakeover(_ node: String, count: Int, timeout: TimeInterval = 20) throws -> String {
        try waitForLog(of: node, containing: ": timeline (from ", count: count, timeout: timeout)
    }

    /// SIGTERM and wait until the daemon exited (its modules stopped).
    func stop(_ node: String) {
        guard let process = processes[node], process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        waitForExit(of: process)
    }

    /// kill -9 of the daemon and of its application processes (the leader the scripts recorded,
    /// its session and its children); its mounts stay, dead.
    func crash(_ node: String) {
        guard processes[node]?.isRunning == true else { return }
        crashDaemonOnly(node)
        for module in modules { killApplication(node: node, module: module.name) }
    }

    /// kill -9 of the daemon only: its application keeps running, on a mount that is now dead.
    func crashDaemonOnly(_ node: String) {
        guard let process = processes[node], process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        waitForExit(of: process)
    }

    /// The pid the start script recorded outside the replicated directory (nil once stopped).
    func recordedApplicationPID(_ node: String, _ module: String) -> pid_t? {
        Self.pid(inFile: "\(scratch.path)/\(node)/log/\(module).pid")
    }

    private func killApplication(node: String, module: String) {
        if let pid = recordedApplicationPID(node, module) { killFamily(of: pid) }
    }

    /// The pid written in `path`, if it holds one.
    private static func pid(inFile path: String) -> pid_t? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    // MARK: Control

    /// Runs the built `clusterctl` against `node`'s daemon.
    @discardableResult
    func clusterctl(_ node: String, _ arguments: [String]) -> (status: Int32, output: String, errors: String) {
        do {
            let result = try runCommand([clusterctlExecutable, "--socket", socket(of: node)] + arguments, timeout: 300)
            return (result.status, result.output, result.error)
        } catch {
            return (-1, "", "\(error)")
        }
    }

    /// Starts both daemons and makes `primary` the reference of each module with `prim`; returns
    /// once every module is (PRIM, SECOND) that way round, replicating.
    func startPair(primary: String = "node1") throws {
        try start("node1")
        try start("node2")
        for module in modules {
            ok(primary, ["prim", "-m", module.name])
            try waitFor(module.name, primary == "node1" ? "PRIM" : "SECOND", primary == "node1" ? "SECOND" : "PRIM")
        }
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
    func state(_ node: String, _ module: String) -> String? { report(node, module)?.localState }

    /// The module as `node`'s daemon reports it (nil if the daemon does not answer).
    func report(_ node: String, _ module: String) -> ModuleReport? {
        let result = clusterctl(node, ["status", "-m", module, "--json"])
        guard result.status == 0, let response = try? ControlJSON.decode(ControlResponse.self, from: Array(result.output.utf8)) else {
            return nil
        }
        return response.status?.modules.first
    }

    /// Waits until the module is in `first` on node1 and `second` on node2 (nil: daemon down);
    /// returns the seconds it took. A (PRIM, SECOND) pair counts once the PRIM replicates to an
    /// up-to-date SECOND (its resync done), so that what is written next reaches both copies.
    @discardableResult
    func waitFor(_ module: String, _ first: String?, _ second: String?, timeout: TimeInterval = 20,
                 file: StaticString = #filePath, line: UInt = #line) throws -> TimeInterval {
        let started = Date()
        var last: (String?, String?) = (nil, nil)
        while Date().timeIntervalSince(started) < timeout {
            let reports = Self.nodes.map { processes[$0]?.isRunning == true ? report($0, module) : nil }
            last = (reports[0]?.localState, reports[1]?.localState)
            let replicating = reports.allSatisfy { report in
                report?.localState != "PRIM" || report?.replication?.hasSuffix("up to date") == true
            }
            if last.0 == first && last.1 == second && replicating { return Date().timeIntervalSince(started) }
            usleep(100_000)
        }
        XCTFail("module \(module): wanted (\(first ?? "down"), \(second ?? "down")), still (\(last.0 ?? "down"), \(last.1 ?? "down")) after \(timeout) s\n"
            + "node1:\n\(log(of: "node1").suffix(3000))\nnode2:\n\(log(of: "node2").suffix(3000))", file: file, line: line)
        throw TestFailure("states not reached")
    }

    /// Waits until `node`'s copy of the module is up to date (its resync finished).
    func waitUntilUpToDate(_ node: String, _ module: String, timeout: TimeInterval = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let result = clusterctl(node, ["status", "-m", module, "--json"])
            if let response = try? ControlJSON.decode(ControlResponse.self, from: Array(result.output.utf8)),
               response.status?.modules.first?.upToDate == true { return }
            usleep(100_000)
        }
        throw TestFailure("\(node)'s copy of \(module) not up to date within \(timeout) s:\n\(log(of: node).suffix(3000))")
    }

    /// The HTTP status line `node`'s health endpoint answers for `module`.
    func health(_ node: String, _ module: String) throws -> String {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = healthPorts[node]!.bigEndian
        inet_pton(AF_INET, self.address(of: node), &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestFailure("connect to \(node)'s health endpoint: \(errno)") }
        let request = Array("GET /health/\(module) HTTP/1.0\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            answer += buffer[..<count]
        }
        return String(decoding: answer, as: UTF8.self).split(separator: "\r\n").first.map(String.init) ?? ""
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
        Self.pid(inFile: directory(node, module) + "/app.pid")
    }
}

/// Creates `path` with `bytes` and fsyncs it on another thread: 0 once done, the errno of the
/// call that failed, or nil if it is still blocked after `timeout` (the thread is left to finish).
func synchronousWrite(_ path: String, _ bytes: [UInt8], timeout: TimeInterval) -> Int32? {
    final class Outcome: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        var code: Int32 = 0
    }
    let outcome = Outcome()
    Thread {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 {
            outcome.code = errno
        } else {
            if write(fd, bytes, bytes.count) != bytes.count || fsync(fd) != 0 { outcome.code = errno }
            close(fd)
        }
        outcome.done.signal()
    }.start()
    guard outcome.done.wait(timeout: .now() + timeout) == .success else { return nil }
    return outcome.code
}
