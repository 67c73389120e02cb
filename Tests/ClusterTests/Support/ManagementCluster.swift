import CLinux
import ControlChannel
import Foundation
import Glibc
import TestSupport
import XCTest

/// The management application of `Tests/ManagementApp` (an HTTP service with a data directory
/// and a version file, PostgreSQL 15 as its SQL server) installed as modules of a ``ClusterLab``,
/// for the seed's application-upgrade procedures. Each node's settings for each module are in
/// `PREFIX/etc/mgmt-app/MODULE.env` (read by the app's scripts); its processes' pids and logs in
/// `PREFIX/run/mgmt-app/MODULE`, outside the replicated directories. Every process the app
/// started is killed by PID when this goes away, before the daemons are.
final class ManagementCluster {
    /// Where a module's SQL server is.
    enum SQL {
        /// No database (a module with only the PostgreSQL server: the mgmt service is elsewhere).
        case none
        /// PostgreSQL in this module's replicated directory `PG_DIR`.
        case inModule(directory: String)
        /// The PostgreSQL server of another module (procedure 2).
        case module(String)
        /// A server outside the cluster (procedure 3).
        case external
    }

    /// One module of the app: which components it runs and where its data is.
    struct AppModule {
        var name: String
        /// The service's replicated data directory (nil: no management service in this module).
        var mgmtDirectory: String?
        var sql: SQL
        /// Raw TOML appended to the module's table (checkers, process monitoring).
        var extra: String = ""

        var components: [String] {
            var list: [String] = []
            if case .inModule = sql { list.append("sql") }
            if mgmtDirectory != nil { list.append("mgmt") }
            return list
        }

        var directories: [String] {
            var list: [String] = []
            if let mgmtDirectory { list.append(mgmtDirectory) }
            if case .inModule(let directory) = sql { list.append(directory) }
            return list
        }
    }

    static let appDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("ManagementApp").path

    let lab: ClusterLab
    let modules: [AppModule]
    let httpPort: UInt16
    let pgPort: UInt16
    /// The external PostgreSQL server's settings prefix (procedure 3), outside both nodes.
    let externalPrefix: String
    let externalPort: UInt16
    /// Every clusterctl command run through ``ctl(_:_:)`` and its output, for the runbooks.
    private(set) var transcript: [String] = []

    init(modules: [AppModule]) throws {
        self.modules = modules
        httpPort = try freePort(on: "127.0.0.1", type: SOCK_STREAM)
        pgPort = try freePort(on: "127.0.0.1", type: SOCK_STREAM)
        externalPort = try freePort(on: "127.0.0.1", type: SOCK_STREAM)
        let scripts = (start: "#!/bin/sh\nexec \(Self.appDirectory)/start", stop: "#!/bin/sh\nexec \(Self.appDirectory)/stop")
        lab = try ClusterLab(modules: modules.map {
            ClusterLab.ModuleSpec(name: $0.name, checkers: $0.extra, scripts: scripts, directories: $0.directories)
        })
        externalPrefix = lab.scratch.path + "/external"
        for node in ClusterLab.nodes {
            // As /run on a real node: PostgreSQL (user postgres) reaches its socket and log under it.
            // (The daemon would create PREFIX/run for its control socket with mode 0700.)
            _ = try lab.scratch.sub("\(node)/run/mgmt-app")
            for module in modules { try writeSettings(node: node, module: module) }
        }
        let external = AppModule(name: "SQL", mgmtDirectory: nil, sql: .inModule(directory: "/pgdata"))
        try writeSettings(prefix: externalPrefix, address: "127.0.0.1", port: externalPort, module: external, conninfo: nil)
        _ = try lab.scratch.sub("external/pgdata")
    }

    deinit { killApplications() }

    // MARK: Settings

    /// The address `node`'s services listen on.
    func address(_ node: String) -> String { node == "node1" ? "127.0.0.1" : "127.0.0.2" }

    private func writeSettings(node: String, module: AppModule) throws {
        let conninfo: String?
        switch module.sql {
        case .none: conninfo = nil
        case .inModule, .module: conninfo = "host=\(address(node)) port=\(pgPort) user=postgres dbname=mgmt"
        case .external: conninfo = "host=127.0.0.1 port=\(externalPort) user=postgres dbname=mgmt"
        }
        try writeSettings(prefix: lab.prefix(node), address: address(node), port: pgPort, module: module, conninfo: conninfo)
    }

    private func writeSettings(prefix: String, address: String, port: UInt16, module: AppModule, conninfo: String?) throws {
        var lines = ["COMPONENTS=\"\(module.components.joined(separator: " "))\"", "RUN_DIR=\(prefix)/run/mgmt-app/\(module.name)"]
        if let directory = module.mgmtDirectory {
            lines += ["MGMT_DIR=\(prefix)\(directory)", "HTTP_ADDR=\(address)", "HTTP_PORT=\(httpPort)"]
        }
        if let conninfo { lines.append("SQL_CONNINFO=\"\(conninfo)\"") }
        if case .inModule(let directory) = module.sql {
            lines += ["PG_DIR=\(prefix)\(directory)", "PG_LISTEN=\(address)", "PG_PORT=\(port)"]
        }
        let directory = prefix + "/etc/mgmt-app"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(directory)/\(module.name).env", atomically: true, encoding: .utf8)
    }

    // MARK: The application's commands

    /// Runs one of the app's scripts (`mgmt`, `sql`, `upgrade`...) for `module` with `prefix`'s
    /// settings, as the daemon or an operator would; its output, or a failure with it.
    @discardableResult
    func app(_ script: String, _ arguments: [String] = [], module: String, prefix: String) throws -> String {
        let result = try spawn([Self.appDirectory + "/" + script] + arguments,
                               environment: ["MIRROR_PATH_PREFIX": prefix, "MIRROR_MODULE": module])
        guard result.status == 0 else {
            throw TestFailure("\(script) \(arguments.joined(separator: " ")) for \(module) in \(prefix) exited \(result.status):\n\(result.output)")
        }
        return result.output
    }

    /// Version 1 of every module's data on `node`'s plain directories (before its daemon starts).
    func install(on node: String) throws {
        for module in modules {
            if module.mgmtDirectory != nil { try app("mgmt", ["install"], module: module.name, prefix: lab.prefix(node)) }
            if case .inModule = module.sql { try app("sql", ["install"], module: module.name, prefix: lab.prefix(node)) }
        }
    }

    /// The upgrade from version N to N+1, run by the operator on `node`.
    @discardableResult
    func upgrade(on node: String, module: String) throws -> String {
        try app("upgrade", module: module, prefix: lab.prefix(node))
    }

    /// Starts, stops or installs the external PostgreSQL server (procedure 3).
    func external(_ verb: String) throws { try app("sql", [verb], module: "SQL", prefix: externalPrefix) }

    var externalConninfo: String { "host=127.0.0.1 port=\(externalPort) user=postgres dbname=mgmt" }

    // MARK: Observing it

    /// GET `path` from the management service on `node`: the body of a 200 answer.
    func http(_ node: String, _ path: String) throws -> String {
        let url = "http://\(address(node)):\(httpPort)\(path)"
        let result = try spawn(["/usr/bin/python3", "-c",
                                "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())",
                                url])
        guard result.status == 0 else { throw TestFailure("GET \(url): \(result.output)") }
        return result.output
    }

    /// Waits until the service answers on `node` with its versions (so its database answers too):
    /// a node taking over announces its state at once, and runs the start scripts after it.
    func waitForService(_ node: String, timeout: TimeInterval = 30, file: StaticString = #filePath, line: UInt = #line) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            do {
                _ = try versions(node)
                return
            } catch {
                last = "\(error)"
            }
            usleep(100_000)
        }
        XCTFail("the management service on \(node) did not answer within \(timeout) s: \(last.suffix(300))", file: file, line: line)
        throw TestFailure("service not answering")
    }

    /// The versions the service on `node` reports: its data's and its database's.
    func versions(_ node: String) throws -> (data: String, sql: String?) {
        let object = try JSONSerialization.jsonObject(with: Data(try http(node, "/version").utf8)) as? [String: Any]
        return (object?["data"] as? String ?? "?", object?["sql"] as? String)
    }

    /// The records and database rows the service on `node` reports.
    func records(_ node: String) throws -> (records: [String], cameras: [[String]]?) {
        let object = try JSONSerialization.jsonObject(with: Data(try http(node, "/records").utf8)) as? [String: Any]
        return (object?["records"] as? [String] ?? [], object?["cameras"] as? [[String]])
    }

    /// A query's rows (fields separated by `|`) through psql.
    func sql(_ conninfo: String, _ statement: String) throws -> String {
        let result = try spawn(["/usr/bin/psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", statement])
        guard result.status == 0 else { throw TestFailure("psql \(statement): \(result.output)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The database of `node`'s module `module` (PostgreSQL in the module, or the one it uses).
    func conninfo(_ node: String) -> String { "host=\(address(node)) port=\(pgPort) user=postgres dbname=mgmt" }

    /// A file of the management data on `node`, read through its mount (or its plain directory
    /// where the module is stopped).
    func file(_ node: String, _ clusterPath: String) throws -> String {
        try String(contentsOfFile: lab.path(node, clusterPath), encoding: .utf8)
    }

    // MARK: clusterctl

    /// `clusterctl` on `node` that must succeed; its output, also kept in the transcript.
    @discardableResult
    func ctl(_ node: String, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line) -> String {
        let result = lab.clusterctl(node, arguments)
        record(node, arguments, result)
        XCTAssertEqual(result.status, 0, "clusterctl \(arguments.joined(separator: " ")) on \(node): \(result.output) \(result.errors)",
                       file: file, line: line)
        return result.output
    }

    /// `clusterctl` on `node` whatever its outcome (kept in the transcript).
    func ctlResult(_ node: String, _ arguments: [String]) -> (status: Int32, output: String, errors: String) {
        let result = lab.clusterctl(node, arguments)
        record(node, arguments, result)
        return result
    }

    private func record(_ node: String, _ arguments: [String], _ result: (status: Int32, output: String, errors: String)) {
        var text = "[\(node)]# clusterctl \(arguments.joined(separator: " "))\n" + result.output
        if !result.errors.isEmpty { text += result.errors }
        text += "(exit \(result.status))\n"
        transcript.append(text)
    }

    /// Writes the transcript to `$PROCEDURE_TRANSCRIPT_DIR/NAME.txt` when that is set.
    func saveTranscript(_ name: String) {
        guard let directory = ProcessInfo.processInfo.environment["PROCEDURE_TRANSCRIPT_DIR"] else { return }
        try? transcript.joined(separator: "\n").write(toFile: "\(directory)/\(name).txt", atomically: true, encoding: .utf8)
    }

    /// Waits until `node`'s copy of `module` is up to date with no resync running.
    func waitUpToDate(_ node: String, _ module: String, timeout: TimeInterval = 60,
                      file: StaticString = #filePath, line: UInt = #line) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last = "no answer"
        while Date() < deadline {
            let result = lab.clusterctl(node, ["status", "-m", module, "--json"])
            if let report = (try? ControlJSON.decode(ControlResponse.self, from: Array(result.output.utf8)))?.status?.modules.first {
                if report.upToDate && report.resync == nil { return }
                last = "upToDate \(report.upToDate), resync \(report.resync ?? "none")"
            }
            usleep(200_000)
        }
        XCTFail("module \(module) on \(node) not up to date after \(timeout) s: \(last)", file: file, line: line)
        throw TestFailure("copy not up to date")
    }

    /// The module's settings as `node`'s daemon reports them.
    func report(_ node: String, _ module: String) throws -> ModuleReport {
        let result = lab.clusterctl(node, ["status", "-m", module, "--json"])
        guard let report = (try? ControlJSON.decode(ControlResponse.self, from: Array(result.output.utf8)))?.status?.modules.first else {
            throw TestFailure("no status of \(module) from \(node): \(result.output) \(result.errors)")
        }
        return report
    }

    // MARK: Ending

    /// Stops both daemons (their modules' stop scripts stop the app) and the external server.
    func shutdown() throws {
        lab.stop("node2")
        lab.stop("node1")
        if FileManager.default.fileExists(atPath: externalPrefix + "/pgdata/PG_VERSION") { try external("stop") }
    }

    /// Every process of the app still running, killed by the PIDs its scripts recorded: the
    /// management services, and each PostgreSQL server with every process of its session.
    func killApplications() {
        var runDirectories = [externalPrefix + "/run/mgmt-app/SQL"]
        for node in ClusterLab.nodes {
            for module in modules { runDirectories.append(lab.prefix(node) + "/run/mgmt-app/" + module.name) }
        }
        for directory in runDirectories {
            if let pid = Self.pid(in: directory + "/mgmt.pid") { kill(pid, SIGKILL) }
            if let pid = Self.pid(in: directory + "/postgres.pid") {
                for member in Self.session(of: pid) { kill(member, SIGKILL) }
            }
        }
    }

    private static func pid(in file: String) -> pid_t? {
        (try? String(contentsOfFile: file, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// `leader` and every process of its session (the postmaster leads its own: pg_ctl starts it with setsid).
    private static func session(of leader: pid_t) -> [pid_t] {
        var members = [leader]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), pid != leader,
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let end = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: end)...].split(separator: " ")
            if fields.count > 3, pid_t(fields[3]) == leader { members.append(pid) }
        }
        return members
    }
}

/// Runs a program to its end through posix_spawn, standard input /dev/null and both outputs
/// into one temporary file, nothing else inherited: a program that leaves a daemon behind (the
/// app's start scripts) returns as soon as it exits. Killed after `timeout`.
func spawn(_ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 120) throws
    -> (status: Int32, output: String) {
    var template = Array("/tmp/procedure-test-output-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    guard fd >= 0 else { throw TestFailure("mkstemp: \(String(cString: strerror(errno)))") }
    unlink(template)
    defer { close(fd) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, fd, 1)
    posix_spawn_file_actions_adddup2(&actions, fd, 2)
    clinux_spawn_close_from(&actions, 3)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
    var mask = sigset_t()
    sigemptyset(&mask)
    posix_spawnattr_setsigmask(&attributes, &mask)
    var variables = ProcessInfo.processInfo.environment
    for (key, value) in environment { variables[key] = value }
    let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
    let argv = arguments.map { strdup($0) } + [nil]
    defer {
        envp.forEach { free($0) }
        argv.forEach { free($0) }
    }
    var pid = pid_t()
    let rc = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, envp)
    guard rc == 0 else { throw TestFailure("cannot run \(arguments[0]): \(String(cString: strerror(rc)))") }
    let deadline = Date().addingTimeInterval(timeout)
    var status: Int32 = 0
    while waitpid(pid, &status, WNOHANG) == 0 {
        if Date() > deadline {
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
            throw TestFailure("\(arguments.joined(separator: " ")) did not end within \(timeout) s")
        }
        usleep(10_000)
    }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    var offset: off_t = 0
    while true {
        let count = pread(fd, &chunk, chunk.count, offset)
        if count <= 0 { break }
        bytes += chunk[0..<count]
        offset += off_t(count)
    }
    let exit = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return (exit, String(decoding: bytes, as: UTF8.self))
}
