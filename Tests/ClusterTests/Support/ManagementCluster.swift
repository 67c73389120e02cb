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
///
/// The nodes run in the network namespaces of a ``NetworkLab``. Each module has its virtual IP
/// (10.77.0.100, .101...) on the serving node; the services listen on every address of their
/// node, the management service reaches a database in its own module on 127.0.0.1 and one of
/// another module on that module's virtual IP, and the test, in the client namespace, talks to the
/// service through the virtual IP (the answer names the node that served it). The external SQL
/// server of procedure 3 runs in the client namespace. The test reaches every PostgreSQL server
/// through its Unix socket.
final class ManagementCluster {
    /// Where a module's SQL server is.
    enum SQL {
        /// No database in or for this module.
        case none
        /// PostgreSQL in this module, its data directory `PG_DIR` replicated.
        case inModule(directory: String)
        /// The PostgreSQL server of another module of the cluster (procedure 2).
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

        var holdsDatabase: Bool {
            if case .inModule = sql { return true }
            return false
        }
    }

    static let appDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("ManagementApp").path

    let lab: ClusterLab
    let network: NetworkLab
    let modules: [AppModule]
    let httpPort: UInt16
    let pgPort: UInt16
    /// The external PostgreSQL server's prefix (procedure 3), outside both nodes.
    let externalPrefix: String
    let externalPort: UInt16
    /// Every clusterctl command run through ``ctl(_:_:)`` and its output, for the runbooks.
    private(set) var transcript: [String] = []

    init(modules: [AppModule]) throws {
        self.modules = modules
        network = try NetworkLab()
        // Each node and the client have their own namespace: nobody else listens there.
        (httpPort, pgPort, externalPort) = (8080, 5432, 5433)
        let scripts = (start: "#!/bin/sh\nexec \(Self.appDirectory)/start", stop: "#!/bin/sh\nexec \(Self.appDirectory)/stop")
        let (httpPort, pgPort) = (self.httpPort, self.pgPort)
        lab = try ClusterLab(modules: modules.enumerated().map { index, module in
            ClusterLab.ModuleSpec(name: module.name, checkers: Self.monitoring(module, httpPort: httpPort, pgPort: pgPort),
                                  virtualIPs: [("\(Self.virtualIP(index))/\(NetworkLab.prefixLength)", "veth-am")],
                                  scripts: scripts, directories: module.directories)
        }, network: .namespaces(network))
        externalPrefix = lab.scratch.path + "/external"
        for node in ClusterLab.nodes {
            // As /run on a real node: PostgreSQL (user postgres) reaches its socket and log under it.
            // (The daemon would create PREFIX/run for its control socket with mode 0700.)
            _ = try lab.scratch.sub("\(node)/run/mgmt-app")
            for module in modules { try writeSettings(node: node, module: module) }
        }
        _ = try lab.scratch.sub("external/run/mgmt-app")
        _ = try lab.scratch.sub("external/pgdata")
        try writeSettings(prefix: externalPrefix, module: AppModule(name: "SQL", mgmtDirectory: nil, sql: .inModule(directory: "/pgdata")),
                          listen: "*", port: externalPort, conninfo: nil)
    }

    /// The daemons first (killed by PID: nothing restarts the app any more), then the app.
    deinit {
        lab.tearDown()
        killApplications()
    }

    /// The `index`th module's virtual IP.
    static func virtualIP(_ index: Int) -> String { "10.77.0.\(100 + index)" }

    /// Process monitoring of the module's main process (errd) and a checker of it, as the
    /// procedures suspend and resume them: a TCP checker of the node's own service (127.0.0.1 in
    /// its namespace).
    static func monitoring(_ module: AppModule, httpPort: UInt16, pgPort: UInt16) -> String {
        let (process, pidFile, port) = module.mgmtDirectory != nil ? ("mgmt-service", "mgmt.pid", httpPort) : ("postgres", "postgres.pid", pgPort)
        return """
            [[module.process]]
            name = "\(process)"
            pid_file = "/run/mgmt-app/\(module.name)/\(pidFile)"
            max_restarts = 1
            restart_window = 60

            [[module.checker]]
            name = "\(process)-port"
            type = "tcp"
            address = "127.0.0.1:\(port)"
            interval = 1
            timeout = 1

            """
    }

    // MARK: Settings

    private func writeSettings(node: String, module: AppModule) throws {
        let conninfo: String?
        switch module.sql {
        case .none: conninfo = nil
        case .inModule: conninfo = "host=127.0.0.1 port=\(pgPort) user=postgres dbname=mgmt"
        case .module(let name):
            let index = try XCTUnwrap(modules.firstIndex { $0.name == name })
            conninfo = "host=\(Self.virtualIP(index)) port=\(pgPort) user=postgres dbname=mgmt"
        case .external:
            conninfo = "host=\(network.address(.client)) port=\(externalPort) user=postgres dbname=mgmt"
        }
        try writeSettings(prefix: lab.prefix(node), module: module, listen: "*", port: pgPort, conninfo: conninfo)
    }

    private func writeSettings(prefix: String, module: AppModule, listen: String, port: UInt16, conninfo: String?) throws {
        var lines = ["COMPONENTS=\"\(module.components.joined(separator: " "))\"", "RUN_DIR=\(prefix)/run/mgmt-app/\(module.name)"]
        if let directory = module.mgmtDirectory {
            lines += ["MGMT_DIR=\(prefix)\(directory)", "HTTP_ADDR=\(listen == "*" ? "0.0.0.0" : listen)", "HTTP_PORT=\(httpPort)"]
        }
        if let conninfo { lines.append("SQL_CONNINFO=\"\(conninfo)\"") }
        if case .inModule(let directory) = module.sql {
            lines += ["PG_DIR=\(prefix)\(directory)", "PG_LISTEN='\(listen)'", "PG_PORT=\(port)"]
        }
        let directory = prefix + "/etc/mgmt-app"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(directory)/\(module.name).env", atomically: true, encoding: .utf8)
    }

    // MARK: The application's commands

    /// Runs one of the app's scripts (`mgmt`, `sql`, `upgrade`...) for `module` as `node` (or
    /// the external server's host, nil), in its network namespace, as the daemon or an operator
    /// there would; its output, or a failure with it.
    @discardableResult
    func app(_ script: String, _ arguments: [String] = [], module: String, node: String?) throws -> String {
        let prefix = node.map(lab.prefix) ?? externalPrefix
        let command = ["/usr/bin/nsenter", "--net=\(network.namespacePath(node.map(lab.host) ?? .client))", "/usr/bin/env",
                       "MIRROR_PATH_PREFIX=\(prefix)", "MIRROR_MODULE=\(module)", "MIRROR_NODE=\(node ?? "external")",
                       Self.appDirectory + "/" + script] + arguments
        let result = try runSpawned(command, timeout: 120)
        guard result.status == 0 else {
            throw TestFailure("\(script) \(arguments.joined(separator: " ")) for \(module) on \(node ?? "external") exited \(result.status):\n\(result.output)\(result.error)")
        }
        return result.output + result.error
    }

    /// Version 1 of every module's data on `node`'s plain directories (before its daemon starts).
    func install(on node: String) throws {
        for module in modules {
            if module.mgmtDirectory != nil { try app("mgmt", ["install"], module: module.name, node: node) }
            if module.holdsDatabase { try app("sql", ["install"], module: module.name, node: node) }
        }
    }

    /// The upgrade from version N to N+1, run by the operator on `node`.
    @discardableResult
    func upgrade(on node: String, module: String) throws -> String {
        try app("upgrade", module: module, node: node)
    }

    /// Starts, stops or installs the external PostgreSQL server (procedure 3).
    func external(_ verb: String) throws { try app("sql", [verb], module: "SQL", node: nil) }

    // MARK: Observing it

    /// The management service's answer to GET `path` on `node`, from the client namespace through
    /// the module's virtual IP (failing if another node answered): its JSON object.
    func http(_ node: String, _ path: String) throws -> [String: Any] {
        let index = try XCTUnwrap(modules.firstIndex { $0.mgmtDirectory != nil })
        let url = "http://\(Self.virtualIP(index)):\(httpPort)\(path)"
        let result = try runSpawned(["/usr/bin/nsenter", "--net=\(network.namespacePath(.client))", "/usr/bin/python3", "-c",
                                     "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())",
                                     url], timeout: 30)
        guard result.status == 0 else { throw TestFailure("GET \(url): \(result.error.suffix(500))") }
        guard let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] else {
            throw TestFailure("GET \(url): not a JSON object: \(result.output)")
        }
        guard object["node"] as? String == node else { throw TestFailure("GET \(url): answered by \(object["node"] ?? "?"), not \(node)") }
        return object
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
        XCTFail("the management service on \(node) did not answer within \(timeout) s: \(last)", file: file, line: line)
        throw TestFailure("service not answering")
    }

    /// The versions the service on `node` reports: its data's and its database's.
    func versions(_ node: String) throws -> (data: String, sql: String?) {
        let object = try http(node, "/version")
        return (object["data"] as? String ?? "?", object["sql"] as? String)
    }

    /// The records the service on `node` reports from its data directory.
    func records(_ node: String) throws -> [String] {
        try http(node, "/records")["records"] as? [String] ?? []
    }

    /// A query's rows (fields separated by `|`) through psql.
    func sql(_ conninfo: String, _ statement: String) throws -> String {
        let result = try runSpawned(["/usr/bin/psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", statement],
                                    timeout: 30)
        guard result.status == 0 else { throw TestFailure("psql \(statement): \(result.error)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The database on `node` (the PostgreSQL server of the module holding it), through its
    /// Unix socket.
    func conninfo(_ node: String) throws -> String {
        let module = try XCTUnwrap(modules.first(where: \.holdsDatabase))
        return "host=\(lab.prefix(node))/run/mgmt-app/\(module.name) port=\(pgPort) user=postgres dbname=mgmt"
    }

    /// The external database, through its Unix socket.
    var externalConninfo: String { "host=\(externalPrefix)/run/mgmt-app/SQL port=\(externalPort) user=postgres dbname=mgmt" }

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

    /// Adds `text` (a log line, a command's output) to the transcript.
    func remember(_ text: String) { transcript.append(text + "\n") }

    /// Writes the transcript to `$PROCEDURE_TRANSCRIPT_DIR/NAME.txt` when that is set.
    func saveTranscript(_ name: String) {
        guard let directory = ProcessInfo.processInfo.environment["PROCEDURE_TRANSCRIPT_DIR"] else { return }
        try? transcript.joined(separator: "\n").write(toFile: "\(directory)/\(name).txt", atomically: true, encoding: .utf8)
    }

    /// Waits until every module of `modules` is in `first` on node1 and `second` on node2, then
    /// checks that `clusterctl status` on `node` says so (`AM: node1 ALONE, node2 STOP`, this
    /// node first); returns that status.
    @discardableResult
    func expect(_ modules: [String], _ first: String, _ second: String, statusFrom node: String = "node1", timeout: TimeInterval = 20,
                file: StaticString = #filePath, line: UInt = #line) throws -> String {
        for module in modules { try lab.waitFor(module, first, second, timeout: timeout, file: file, line: line) }
        // The peer's state as this node last heard it may lag behind a moment (a node leaving PRIM
        // or ALONE announces its new state once its stop script has run).
        let states = node == "node1" ? "node1 \(first), node2 \(second)" : "node2 \(second), node1 \(first)"
        let deadline = Date().addingTimeInterval(10)
        var status = ""
        repeat {
            status = lab.clusterctl(node, ["status"]).output
            if modules.allSatisfy({ status.contains("\($0): \(states)\n") }) { break }
            usleep(100_000)
        } while Date() < deadline
        status = ctl(node, ["status"], file: file, line: line)
        for module in modules { XCTAssertTrue(status.contains("\(module): \(states)\n"), status, file: file, line: line) }
        return status
    }

    /// The module's report from `node`'s daemon.
    func report(_ node: String, _ module: String) throws -> ModuleReport {
        let result = lab.clusterctl(node, ["status", "-m", module, "--json"])
        guard let report = (try? ControlJSON.decode(ControlResponse.self, from: Array(result.output.utf8)))?.status?.modules.first else {
            throw TestFailure("no status of \(module) from \(node): \(result.output) \(result.errors)")
        }
        return report
    }

    /// Waits until `node`'s copy of `module` is up to date with no resync running.
    func waitUpToDate(_ node: String, _ module: String, timeout: TimeInterval = 60,
                      file: StaticString = #filePath, line: UInt = #line) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last = "no answer"
        while Date() < deadline {
            if let report = try? report(node, module) {
                if report.upToDate && report.resync == nil { return }
                last = "upToDate \(report.upToDate), resync \(report.resync ?? "none")"
            }
            usleep(200_000)
        }
        XCTFail("module \(module) on \(node) not up to date after \(timeout) s: \(last)", file: file, line: line)
        throw TestFailure("copy not up to date")
    }

    // MARK: Ending

    /// Stops both daemons (their modules' stop scripts stop the app) and the external server.
    func shutdown() throws {
        lab.stop("node2")
        lab.stop("node1")
        if FileManager.default.fileExists(atPath: externalPrefix + "/pgdata/PG_VERSION") { try external("stop") }
    }

    /// Every process of the app still running, killed by the PIDs its scripts recorded: the
    /// management services, and each PostgreSQL server with its backends.
    func killApplications() {
        var runDirectories = [externalPrefix + "/run/mgmt-app/SQL"]
        for node in ClusterLab.nodes {
            for module in modules { runDirectories.append(lab.prefix(node) + "/run/mgmt-app/" + module.name) }
        }
        for directory in runDirectories {
            for file in ["mgmt.pid", "postgres.pid"] {
                if let text = try? String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8),
                   let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                    killFamily(of: pid)
                }
            }
        }
    }
}
