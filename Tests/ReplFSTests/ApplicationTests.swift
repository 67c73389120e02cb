import Foundation
import Glibc
import XCTest
import TestSupport

/// Real databases on a ReplFS mount: they must work through it (shared mmap, fsync, locks,
/// renames) and find their files intact on the plain directory once it is unmounted.
final class ApplicationTests: XCTestCase {
    // MARK: SQLite

    /// 10,000 separate WAL transactions (the -shm index is a shared mmap of a file on the mount);
    /// a second process reads through that index while the writer still holds it.
    func testSQLiteWALTenThousandTransactionsSurviveUnmount() throws {
        try requireMountPrivileges()
        let scratch = try ScratchDirectory("sqlite")
        let dir = try scratch.sub("app")
        let db = dir + "/app.db"
        let rows = 10_000
        let expectedSum = rows * (rows - 1) / 2

        var script = ".bail on\nPRAGMA journal_mode=WAL;\n"
        script += "CREATE TABLE items(n INTEGER PRIMARY KEY, payload TEXT NOT NULL);\n"
        for n in 0..<rows {
            script += "BEGIN; INSERT INTO items(n, payload) VALUES(\(n), hex(randomblob(64))); COMMIT;\n"
        }
        // Still inside the writer's connection: the WAL and its shared-memory index exist, and a
        // second process sees every committed row through them.
        script += ".shell test -s \(db)-wal && test -s \(db)-shm && echo wal-and-shm-present\n"
        script += ".shell /usr/bin/sqlite3 \(db) 'SELECT count(*) FROM items;'\n"
        script += "SELECT 'writer', count(*) FROM items;\n"
        let scriptPath = scratch.path + "/transactions.sql" // outside the mount
        try script.write(toFile: scriptPath, atomically: false, encoding: .utf8)

        let mount = try ReplFSMount(over: dir)
        defer { mount.stop() }

        let started = Date()
        let writer = try mustRun(["/usr/bin/sqlite3", "-bail", db, ".read \(scriptPath)"], timeout: 300)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(nonEmptyLines(writer), ["wal", "wal-and-shm-present", "\(rows)", "writer|\(rows)"],
                       "writer session output")
        print("SQLite: \(rows) WAL transactions through ReplFS in \(String(format: "%.1f", elapsed)) s")

        let check = "PRAGMA integrity_check; PRAGMA journal_mode; SELECT count(*), sum(n) FROM items;"
        XCTAssertEqual(nonEmptyLines(try mustRun(["/usr/bin/sqlite3", "-bail", db, check])),
                       ["ok", "wal", "\(rows)|\(expectedSum)"], "database read through the mount")
        XCTAssertTrue(isReplFSMounted(dir))

        mount.stop()
        XCTAssertFalse(isReplFSMounted(dir), "ReplFS still mounted after stop()")
        XCTAssertFalse(mount.process.isRunning, "the daemon outlived its unmount")
        XCTAssertEqual(nonEmptyLines(try mustRun(["/usr/bin/sqlite3", "-bail", db, check])),
                       ["ok", "wal", "\(rows)|\(expectedSum)"], "database read on the plain directory")
    }

    // MARK: PostgreSQL

    /// initdb, pgbench -i and a 10 s pgbench run on the mount; the figures survive a restart on the
    /// mount, and the unmounted directory is still a valid cluster holding the same figures.
    func testPostgreSQLPgbenchSurvivesRestartAndUnmount() throws {
        try requireMountPrivileges()
        guard let account = getpwnam("postgres") else { return XCTFail("user postgres is missing") }
        let (uid, gid) = (account.pointee.pw_uid, account.pointee.pw_gid)
        let scratch = try ScratchDirectory("postgres")
        let data = try scratch.sub("pgdata")
        let socketDirectory = try scratch.sub("socket")
        for path in [data, socketDirectory] {
            XCTAssertEqual(chown(path, uid, gid), 0, "chown \(path)")
        }
        XCTAssertEqual(chmod(data, 0o700), 0)

        let mount = try ReplFSMount(over: data)
        defer { mount.stop() }
        let cluster = PostgresCluster(data: data, socketDirectory: socketDirectory,
                                      port: 20_000 + Int(getpid() % 20_000))
        defer { cluster.stopForSure() } // runs before mount.stop()

        try cluster.initdb()
        try cluster.start()
        try cluster.pgbench(["-i", "-s", "5"])
        let run = try cluster.pgbench(["-c", "4", "-j", "2", "-T", "10"])
        let processed = try PostgresCluster.figure("number of transactions actually processed:", in: run)
        let failed = try PostgresCluster.figure("number of failed transactions:", in: run)
        XCTAssertEqual(failed, 0, "pgbench reported failed transactions:\n\(run)")
        XCTAssertGreaterThan(processed, 0, "pgbench processed no transaction:\n\(run)")

        let figures = try cluster.figures()
        XCTAssertEqual(figures.accounts, 500_000, "pgbench -i -s 5 makes 500,000 accounts")
        XCTAssertEqual(figures.history, processed, "every acknowledged transaction left one history row")
        XCTAssertEqual(figures.branchBalance, figures.accountBalance, "branch and account balances disagree")
        XCTAssertEqual(figures.tellerBalance, figures.accountBalance, "teller and account balances disagree")
        XCTAssertEqual(figures.historyDelta, figures.accountBalance, "history deltas and balances disagree")
        print("PostgreSQL: \(processed) pgbench transactions through ReplFS; figures \(figures)")

        try cluster.stop()
        try cluster.start()
        XCTAssertEqual(try cluster.figures(), figures, "figures changed across a restart on the mount")
        try cluster.stop()

        mount.stop()
        XCTAssertFalse(isReplFSMounted(data), "ReplFS still mounted after stop()")
        XCTAssertFalse(mount.process.isRunning, "the daemon outlived its unmount")

        // The plain directory: a cleanly shut down cluster whose pages all verify, that starts
        // and holds the same figures with consistent indexes.
        let control = try cluster.asPostgres([PostgresCluster.bin + "/pg_controldata", "-D", data])
        let state = control.split(separator: "\n").first { $0.hasPrefix("Database cluster state:") }
        XCTAssertEqual(state?.dropFirst("Database cluster state:".count).trimmingCharacters(in: .whitespaces), "shut down",
                       "pg_controldata on the plain directory:\n\(control)")
        try cluster.asPostgres([PostgresCluster.bin + "/pg_checksums", "--check", "-D", data], timeout: 120)
        try cluster.start()
        XCTAssertEqual(try cluster.figures(), figures, "figures differ on the plain directory")
        try cluster.asPostgres([PostgresCluster.bin + "/pg_amcheck", "-h", socketDirectory, "-p", "\(cluster.port)",
                                "-U", "postgres", "--install-missing", "--heapallindexed", "postgres"], timeout: 120)
        try cluster.stop()
    }
}

/// A PostgreSQL 15 cluster run as user postgres, reachable only through a Unix socket in a
/// directory of the test's own.
private final class PostgresCluster {
    static let bin = "/usr/lib/postgresql/15/bin"

    struct Figures: Equatable, CustomStringConvertible {
        let accountBalance: Int64
        let accounts: Int64
        let history: Int64
        let branchBalance: Int64
        let tellerBalance: Int64
        let historyDelta: Int64

        var description: String {
            "sum(abalance) \(accountBalance), accounts \(accounts), history \(history)"
        }
    }

    let data: String
    let socketDirectory: String
    let port: Int
    let logFile: String
    /// The postmaster of the running server, read from postmaster.pid once it started.
    private var postmasterPID: pid_t?

    init(data: String, socketDirectory: String, port: Int) {
        self.data = data
        self.socketDirectory = socketDirectory
        self.port = port
        self.logFile = socketDirectory + "/server.log" // outside the data directory, writable by postgres
    }

    @discardableResult
    func asPostgres(_ arguments: [String], timeout: TimeInterval = 60) throws -> String {
        try mustRun(["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/env", "-C", "/"] + arguments, timeout: timeout)
    }

    func initdb() throws {
        try asPostgres([Self.bin + "/initdb", "-D", data, "-U", "postgres", "-A", "trust", "--data-checksums"], timeout: 120)
    }

    func start() throws {
        let options = "-c listen_addresses='' -c unix_socket_directories='\(socketDirectory)' -p \(port)"
        // runSpawned, not runCommand: the postmaster outlives pg_ctl and would inherit the socket
        // Foundation.Process watches for its child's exit.
        let arguments = ["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/env", "-C", "/", Self.bin + "/pg_ctl",
                         "-D", data, "-l", logFile, "-w", "-t", "60", "-o", options, "start"]
        let result = try runSpawned(arguments, timeout: 90)
        guard result.status == 0 else {
            postmasterPID = readPostmasterPID()
            throw TestFailure("pg_ctl start exited \(result.status): \(result.error)\(result.output)\nserver log:\n\(serverLogTail())")
        }
        guard let pid = readPostmasterPID() else { throw TestFailure("no postmaster.pid after pg_ctl start") }
        postmasterPID = pid
    }

    /// A clean (fast) shutdown; fails unless the postmaster is gone afterwards.
    func stop() throws {
        do {
            try asPostgres([Self.bin + "/pg_ctl", "-D", data, "-w", "-t", "60", "-m", "fast", "stop"], timeout: 90)
        } catch {
            throw TestFailure("\(error)\nserver log:\n\(serverLogTail())")
        }
        if let pid = postmasterPID, !waitForProcessExit(pid, timeout: 10) {
            throw TestFailure("postmaster \(pid) still running after pg_ctl stop")
        }
        postmasterPID = nil
    }

    /// Whatever happened: fast stop, then immediate, then SIGKILL to the postmaster by PID.
    func stopForSure() {
        guard let pid = postmasterPID ?? readPostmasterPID(), processIsAlive(pid) else { return }
        postmasterPID = nil
        for mode in ["fast", "immediate"] {
            _ = try? asPostgres([Self.bin + "/pg_ctl", "-D", data, "-w", "-t", "20", "-m", mode, "stop"], timeout: 30)
            if waitForProcessExit(pid, timeout: 5) { return }
        }
        kill(pid, SIGKILL)
        waitForProcessExit(pid, timeout: 10)
    }

    @discardableResult
    func pgbench(_ arguments: [String]) throws -> String {
        try asPostgres([Self.bin + "/pgbench", "-h", socketDirectory, "-p", "\(port)", "-U", "postgres"] + arguments + ["postgres"],
                       timeout: 120)
    }

    func query(_ sql: String) throws -> String {
        try asPostgres([Self.bin + "/psql", "-h", socketDirectory, "-p", "\(port)", "-U", "postgres", "-X", "-A", "-t", "-q",
                        "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql])
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func figures() throws -> Figures {
        let row = try query("""
            SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT count(*) FROM pgbench_accounts),
                   (SELECT count(*) FROM pgbench_history), (SELECT sum(bbalance) FROM pgbench_branches),
                   (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT coalesce(sum(delta), 0) FROM pgbench_history)
            """)
        let values = row.split(separator: "|").compactMap { Int64($0) }
        guard values.count == 6 else { throw TestFailure("unexpected figures row: \(row)") }
        return Figures(accountBalance: values[0], accounts: values[1], history: values[2],
                       branchBalance: values[3], tellerBalance: values[4], historyDelta: values[5])
    }

    /// The number after `label` in pgbench's report.
    static func figure(_ label: String, in report: String) throws -> Int64 {
        for line in report.split(separator: "\n") where line.hasPrefix(label) {
            if let value = line.dropFirst(label.count).split(separator: " ").first.flatMap({ Int64($0) }) {
                return value
            }
        }
        throw TestFailure("no '\(label)' in pgbench's report:\n\(report)")
    }

    private func readPostmasterPID() -> pid_t? {
        guard let text = try? String(contentsOfFile: data + "/postmaster.pid", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first.flatMap { pid_t($0) }
    }

    private func serverLogTail() -> String {
        String(((try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "(no server log)").suffix(3000))
    }
}
