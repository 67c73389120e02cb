import Foundation
import Glibc
import TestSupport
import XCTest

/// Real databases on the primary's mount, crashed mid-load: the primary's daemon and the
/// database's processes are killed with SIGKILL (with the network between the nodes losing what
/// it held, see ``DelayingRelay``); the secondary, stopped cleanly, holds a copy the database
/// opens and recovers, with every transaction whose commit returned.
final class FailoverDatabaseTests: XCTestCase {
    func testSQLiteWALCommitsSurviveAKilledPrimary() throws {
        try sqliteCrash(journalMode: "WAL", seed: 0x5017E_1)
    }

    func testSQLiteRollbackJournalCommitsSurviveAKilledPrimary() throws {
        try sqliteCrash(journalMode: "DELETE", seed: 0x5017E_2)
    }

    func testPostgreSQLCommitsSurviveAKilledPrimary() throws {
        try requireMountPrivileges()
        guard let account = PostgresServer.postgresAccount else { return XCTFail("user postgres is missing") }
        let seed: UInt64 = 0x9057_6E5
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        try cluster.start(throughRelayWithDelay: 0.002, delayed: false) // delayed once the set-up is done
        let socketDirectory = try cluster.scratch.sub("socket")
        XCTAssertEqual(chown(socketDirectory, account.uid, account.gid), 0)
        // The data directory is made on the mount, so that its owner and mode are replicated too.
        let data = cluster.primaryDirectory + "/pg"
        XCTAssertEqual(mkdir(data, 0o700), 0, "mkdir on the primary's mount: errno \(errno)")
        XCTAssertEqual(chown(data, account.uid, account.gid), 0)
        let server = PostgresServer(data: data, socketDirectory: socketDirectory)
        defer { server.stopForSure() } // before the cluster stops (defers run last first)

        let setUp = Date()
        // --no-sync: initdb's own files need no fsync here (what is tested is the commits'); it
        // saves seconds of forwarded fsyncs.
        try server.initdb(extraArguments: ["--no-sync"])
        try server.start()
        print("PostgreSQL: initdb and start on the replicated mount took \(String(format: "%.1f", Date().timeIntervalSince(setUp))) s")
        cluster.relay?.delayFromNowOn()
        let log = cluster.scratch.path + "/committed.log" // outside the mounts
        let output = cluster.scratch.path + "/postgres-client.out"
        let client = try DatabaseClient.start(DatabaseClient.postgres, arguments: [server.socketPath, log, "\(seed)"],
                                              scratch: cluster.scratch, name: "postgres-client")
        defer { stopClient(client) }
        try DatabaseClient.waitForCommits(20, log: log, client: client, output: output)
        let delay = crashDelay(seed: seed)
        usleep(useconds_t(delay * 1_000_000))
        guard client.isRunning else { return XCTFail("the client stopped on its own: \(text(output))\n\(server.serverLogTail())") }
        let serverProcesses = server.serverProcesses()
        XCTAssertGreaterThan(serverProcesses.count, 3, "postmaster, background processes and the client's backend")

        cluster.crashPrimary(killingAlso: serverProcesses + [client.processIdentifier])
        client.waitUntilExit()
        server.kill9() // anything the server forked meanwhile
        XCTAssertEqual(server.serverProcesses(), [], "processes of the killed server are still running")
        try server.waitUntilPostmasterIsReaped()
        let committed = try CommittedTransactions(log: log)
        try checkTheSecondaryOutlivedTheCrash(cluster)
        print("PostgreSQL: crashed \(String(format: "%.2f", delay)) s after the 20th commit, after \(committed.count) committed transactions")
        XCTAssertGreaterThanOrEqual(committed.count, 20)

        // The secondary's plain copy: PostgreSQL recovers it and finds every committed transaction.
        let copySocket = try cluster.scratch.sub("socket-copy")
        XCTAssertEqual(chown(copySocket, account.uid, account.gid), 0)
        let copy = PostgresServer(data: cluster.secondaryDirectory + "/pg", socketDirectory: copySocket)
        defer { copy.stopForSure() }
        try copy.start()
        let serverLog = (try? String(contentsOfFile: copy.logFile, encoding: .utf8)) ?? ""
        XCTAssertTrue(serverLog.contains("database system was not properly shut down; automatic recovery in progress"),
                      "the copy should be a crashed cluster that recovers:\n\(copy.serverLogTail())")
        XCTAssertEqual(try copy.query("SELECT count(*) FROM items WHERE digest <> md5(payload)"), "0", "rows with a wrong payload")
        let counter = try copy.query("SELECT n FROM counter")
        let ids = try copy.query("SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM items")
            .split(separator: ",").compactMap { Int($0) }
        if let problem = committed.problem(ids: ids, counter: Int(counter) ?? -1) {
            XCTFail("the secondary's copy lost committed transactions: \(problem)\nsecondary's log:\n\(cluster.secondaryLog.suffix(3000))")
        }
        print("PostgreSQL: the secondary's copy recovered with \(ids.count) rows, counter \(counter)")
        try copy.asPostgres([PostgresServer.bin + "/pg_amcheck", "-h", copySocket, "-p", "\(copy.port)", "-U", "postgres",
                             "--install-missing", "--heapallindexed", "postgres"], timeout: 120)
        try copy.stop()
    }

    // MARK: Steps

    private func sqliteCrash(journalMode: String, seed: UInt64) throws {
        try requireMountPrivileges()
        let cluster = try TwoNodeCluster()
        defer { cluster.stop() }
        try cluster.start(throughRelayWithDelay: 0.002)
        let log = cluster.scratch.path + "/committed.log" // outside the mounts
        let output = cluster.scratch.path + "/sqlite-client.out"
        let client = try DatabaseClient.start(DatabaseClient.sqlite,
                                              arguments: [cluster.primaryDirectory + "/app.db", log, journalMode, "\(seed)"],
                                              scratch: cluster.scratch, name: "sqlite-client")
        defer { stopClient(client) }
        try DatabaseClient.waitForCommits(20, log: log, client: client, output: output)
        let delay = crashDelay(seed: seed)
        usleep(useconds_t(delay * 1_000_000))
        guard client.isRunning else { return XCTFail("the client stopped on its own: \(text(output))") }
        cluster.crashPrimary(killingAlso: [client.processIdentifier])
        client.waitUntilExit()
        let committed = try CommittedTransactions(log: log)
        try checkTheSecondaryOutlivedTheCrash(cluster)
        print("SQLite \(journalMode): crashed \(String(format: "%.2f", delay)) s after the 20th commit, after \(committed.count) committed transactions")
        XCTAssertGreaterThanOrEqual(committed.count, 20)

        // The secondary's plain copy: SQLite recovers it (hot journal or WAL) and finds every
        // committed transaction.
        let copy = cluster.secondaryDirectory + "/app.db"
        let lines = nonEmptyLines(try mustRun(["/usr/bin/sqlite3", "-bail", copy, """
            PRAGMA integrity_check; PRAGMA journal_mode;
            SELECT count(*) FROM items WHERE digest <> lower(hex(sha3(payload)));
            SELECT n FROM counter; SELECT coalesce(group_concat(id), '') FROM (SELECT id FROM items ORDER BY id);
            """]))
        guard lines.count >= 4 else { return XCTFail("sqlite3 on the copy printed \(lines)") }
        XCTAssertEqual(lines[0], "ok", "integrity_check of the secondary's copy")
        XCTAssertEqual(lines[1], journalMode.lowercased())
        XCTAssertEqual(lines[2], "0", "rows with a wrong payload")
        let ids = lines.count > 4 ? lines[4].split(separator: ",").compactMap { Int($0) } : []
        if let problem = committed.problem(ids: ids, counter: Int(lines[3]) ?? -1) {
            XCTFail("the secondary's copy lost committed transactions: \(problem)\nsecondary's log:\n\(cluster.secondaryLog.suffix(3000))")
        }
        print("SQLite \(journalMode): the secondary's copy holds \(ids.count) rows, counter \(lines[3])")
    }

    /// After the crash: the primary had not gone on alone (its acknowledgements were the peer's),
    /// the secondary saw the connection end and still runs; then it is stopped cleanly.
    private func checkTheSecondaryOutlivedTheCrash(_ cluster: TwoNodeCluster) throws {
        XCTAssertFalse(isReplFSMounted(cluster.primaryDirectory), "the dead primary's mount is still there")
        guard !cluster.primaryLog.contains("continuing alone") else {
            throw TestFailure("the primary went on alone before the crash:\n\(cluster.primaryLog.suffix(3000))")
        }
        XCTAssertEqual(cluster.waitForSecondaryLog("replication from node 'node1'").count, 1,
                       "the secondary did not see the primary go:\n\(cluster.secondaryLog)")
        XCTAssertTrue(cluster.secondary?.process.isRunning ?? false, "the secondary died:\n\(cluster.secondaryLog)")
        cluster.stopSecondary()
        XCTAssertFalse(isReplFSMounted(cluster.secondaryDirectory))
        XCTAssertTrue(cluster.secondaryLog.contains("unmounted"), "the secondary did not stop cleanly:\n\(cluster.secondaryLog)")
    }

    /// The moment of the crash, 0.1 to 1.1 s after the 20th commit, from the seed.
    private func crashDelay(seed: UInt64) -> TimeInterval {
        var generator = SeededGenerator(seed: seed)
        return 0.1 + Double(generator.int(in: 0...1000)) / 1000
    }

    private func stopClient(_ client: Process) {
        if client.isRunning { kill(client.processIdentifier, SIGKILL) }
        client.waitUntilExit()
    }

    private func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
}
