import Foundation
import Glibc

/// A PostgreSQL 15 server run as user postgres on a data directory of the test's, reachable only
/// through a Unix socket in a directory of the test's; every process of it can be found and
/// killed by PID (the postmaster leads its own session: pg_ctl starts it with setsid).
public final class PostgresServer {
    public static let bin = "/usr/lib/postgresql/15/bin"

    public let data: String
    public let socketDirectory: String
    public let port: Int
    public let logFile: String
    /// The postmaster, read from postmaster.pid once it started.
    public private(set) var postmasterPID: pid_t?

    /// `socketDirectory` must be writable by postgres; the server's log goes there too.
    public init(data: String, socketDirectory: String, port: Int = 5432) {
        self.data = data
        self.socketDirectory = socketDirectory
        self.port = port
        logFile = socketDirectory + "/server.log"
    }

    /// Takes the server running on `data` (started by someone else, e.g. a cluster module's start
    /// script) as this one: its postmaster is read from postmaster.pid. False if there is none.
    @discardableResult
    public func adoptRunningServer() -> Bool {
        postmasterPID = readPostmasterPID()
        return postmasterPID.map(processIsAlive) ?? false
    }

    public static var postgresAccount: (uid: uid_t, gid: gid_t)? {
        guard let account = getpwnam("postgres") else { return nil }
        return (account.pointee.pw_uid, account.pointee.pw_gid)
    }

    @discardableResult
    public func asPostgres(_ arguments: [String], timeout: TimeInterval = 60) throws -> String {
        try mustRun(["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/env", "-C", "/"] + arguments, timeout: timeout)
    }

    public func initdb(extraArguments: [String] = []) throws {
        try asPostgres([Self.bin + "/initdb", "-D", data, "-U", "postgres", "-A", "trust", "--data-checksums"] + extraArguments,
                       timeout: 240)
    }

    /// The Unix socket clients connect to.
    public var socketPath: String { socketDirectory + "/.s.PGSQL.\(port)" }

    public func start(timeout: Int = 120) throws {
        let options = "-c listen_addresses='' -c unix_socket_directories='\(socketDirectory)' -p \(port)"
        // runSpawned: the postmaster outlives pg_ctl (see runSpawned).
        let arguments = ["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/env", "-C", "/", Self.bin + "/pg_ctl",
                         "-D", data, "-l", logFile, "-w", "-t", "\(timeout)", "-o", options, "start"]
        let result = try runSpawned(arguments, timeout: TimeInterval(timeout + 30))
        postmasterPID = readPostmasterPID()
        guard result.status == 0 else {
            throw TestFailure("pg_ctl start exited \(result.status): \(result.error)\(result.output)\nserver log:\n\(serverLogTail())")
        }
        guard postmasterPID != nil else { throw TestFailure("no postmaster.pid after pg_ctl start") }
    }

    /// A clean (fast) shutdown; fails unless every process of the server is gone afterwards.
    public func stop() throws {
        do {
            try asPostgres([Self.bin + "/pg_ctl", "-D", data, "-w", "-t", "60", "-m", "fast", "stop"], timeout: 90)
        } catch {
            throw TestFailure("\(error)\nserver log:\n\(serverLogTail())")
        }
        let deadline = Date().addingTimeInterval(10)
        while !serverProcesses().isEmpty {
            if Date() >= deadline { throw TestFailure("processes of the server still running after pg_ctl stop: \(serverProcesses())") }
            usleep(20_000)
        }
        postmasterPID = nil
    }

    /// Every process of the server: the postmaster and whatever runs in its session or as its
    /// child (backends, background workers), run by user postgres, found in /proc; also once
    /// the postmaster is dead.
    public func serverProcesses() -> [pid_t] {
        guard let leader = postmasterPID, let account = Self.postgresAccount else { return [] }
        return processFamily(of: leader, owner: account.uid)
    }

    /// SIGKILL to every process of the server, by PID, until none is left (a crash).
    public func kill9() {
        guard let leader = postmasterPID, let account = Self.postgresAccount else { return }
        killFamily(of: leader, owner: account.uid)
    }

    /// Waits until the postmaster, once dead, is reaped (its PID gone from /proc): until then a
    /// server started on a copy of its data directory takes its postmaster.pid for a live server's.
    public func waitUntilPostmasterIsReaped(timeout: TimeInterval = 20) throws {
        guard let pid = postmasterPID else { return }
        let deadline = Date().addingTimeInterval(timeout)
        while access("/proc/\(pid)", F_OK) == 0 {
            guard Date() < deadline else { throw TestFailure("the killed postmaster \(pid) was not reaped within \(timeout) s") }
            usleep(20_000)
        }
    }

    /// Whatever happened: a fast stop if the postmaster still runs, then SIGKILL by PID to
    /// anything of the server left.
    public func stopForSure() {
        guard postmasterPID != nil else { return }
        if let pid = postmasterPID, processIsAlive(pid) {
            _ = try? asPostgres([Self.bin + "/pg_ctl", "-D", data, "-w", "-t", "20", "-m", "fast", "stop"], timeout: 30)
        }
        kill9()
        postmasterPID = nil
    }

    /// A query through psql; its rows, fields separated by `|`.
    public func query(_ sql: String) throws -> String {
        try asPostgres([Self.bin + "/psql", "-h", socketDirectory, "-p", "\(port)", "-U", "postgres", "-X", "-A", "-t", "-q",
                        "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql])
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func serverLogTail() -> String {
        String(((try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "(no server log)").suffix(3000))
    }

    private func readPostmasterPID() -> pid_t? {
        guard let text = try? String(contentsOfFile: data + "/postmaster.pid", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first.flatMap { pid_t($0) }
    }
}
