import Foundation
import Glibc
import TestSupport

/// Database clients run as child processes (Python): each commits transaction 1, 2, 3... and,
/// once the commit returned, appends the transaction's number to a log outside the mounts
/// ("ready" first, once the schema exists). Transaction `n` inserts row `n` (a random payload and
/// its digest), adds one to the only row of `counter`, and deletes row `n - 50` when `n` is a
/// multiple of 5 above 50: see ``CommittedTransactions``.
enum DatabaseClient {
    /// `sqlite.py DATABASE LOG JOURNAL_MODE SEED`: synchronous=FULL, one transaction per commit.
    static let sqlite = #"""
        import hashlib, os, random, sqlite3, sys
        database, log_path, mode, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
        rng = random.Random(seed)
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        connection = sqlite3.connect(database, isolation_level=None)
        assert connection.execute(f"PRAGMA journal_mode={mode}").fetchone()[0] == mode.lower()
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("CREATE TABLE items(id INTEGER PRIMARY KEY, payload BLOB NOT NULL, digest TEXT NOT NULL)")
        connection.execute("CREATE TABLE counter(n INTEGER NOT NULL)")
        connection.execute("INSERT INTO counter VALUES (0)")
        os.write(log, b"ready\n")
        n = 0
        while True:
            n += 1
            payload = rng.randbytes(rng.choice([rng.randint(10, 300), rng.randint(300, 5000), rng.randint(5000, 40000)]))
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO items VALUES (?, ?, ?)", (n, payload, hashlib.sha3_256(payload).hexdigest()))
            connection.execute("UPDATE counter SET n = n + 1")
            if n % 5 == 0 and n > 50:
                connection.execute("DELETE FROM items WHERE id = ?", (n - 50,))
            connection.execute("COMMIT")
            os.write(log, f"{n}\n".encode())
        """#

    /// `postgres.py SOCKET LOG SEED`: the frontend/backend protocol over the Unix socket (trust
    /// authentication, simple queries, autocommit: the statements of one query are one transaction).
    static let postgres = #"""
        import hashlib, os, random, socket, struct, sys
        socket_path, log_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
        rng = random.Random(seed)
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        connection = socket.socket(socket.AF_UNIX)
        connection.connect(socket_path)

        def exactly(count):
            data = b""
            while len(data) < count:
                chunk = connection.recv(count - len(data))
                if not chunk:
                    sys.exit("the server closed the connection")
                data += chunk
            return data

        def until_ready():
            error = None
            while True:
                header = exactly(5)
                kind, body = header[:1], exactly(struct.unpack("!I", header[1:])[0] - 4)
                if kind == b"E":
                    error = body
                elif kind == b"R" and struct.unpack("!I", body[:4])[0] != 0:
                    sys.exit("the server asks for a password: trust authentication expected")
                elif kind == b"Z":
                    if error is not None:
                        sys.exit(f"error: {error!r}")
                    return

        def query(sql):
            body = sql.encode() + b"\0"
            connection.sendall(b"Q" + struct.pack("!I", len(body) + 4) + body)
            until_ready()

        startup = struct.pack("!I", 196608) + b"user\0postgres\0database\0postgres\0\0"
        connection.sendall(struct.pack("!I", len(startup) + 4) + startup)
        until_ready()
        query("CREATE TABLE items(id bigint PRIMARY KEY, payload text NOT NULL, digest text NOT NULL);"
              "CREATE TABLE counter(n bigint NOT NULL); INSERT INTO counter VALUES (0)")
        os.write(log, b"ready\n")
        n = 0
        while True:
            n += 1
            payload = rng.randbytes(rng.choice([rng.randint(10, 300), rng.randint(300, 4000)])).hex()
            sql = (f"INSERT INTO items VALUES ({n}, '{payload}', '{hashlib.md5(payload.encode()).hexdigest()}');"
                   "UPDATE counter SET n = n + 1;")
            if n % 5 == 0 and n > 50:
                sql += f"DELETE FROM items WHERE id = {n - 50};"
            query(sql)
            os.write(log, f"{n}\n".encode())
        """#

    /// Starts `script` with python3; its output goes to `output`.
    static func start(_ script: String, arguments: [String], scratch: ScratchDirectory, name: String) throws -> Process {
        let scriptPath = scratch.path + "/\(name).py"
        try script.write(toFile: scriptPath, atomically: false, encoding: .utf8)
        let outputPath = scratch.path + "/\(name).out"
        guard FileManager.default.createFile(atPath: outputPath, contents: nil),
              let output = FileHandle(forWritingAtPath: outputPath) else { throw TestFailure("cannot create \(outputPath)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [scriptPath] + arguments
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return process
    }

    /// Waits until the client's log shows it committed `count` transactions (it must still run).
    static func waitForCommits(_ count: Int, log: String, client: Process, output: String, timeout: TimeInterval = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while (try? CommittedTransactions(log: log))?.count ?? 0 < count {
            guard client.isRunning else {
                throw TestFailure("the client stopped: \((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
            }
            guard Date() < deadline else { throw TestFailure("the client did not commit \(count) transactions within \(timeout) s") }
            usleep(10_000)
        }
    }
}

/// The transactions a client recorded as committed: 1 through `count`, in order.
struct CommittedTransactions {
    let count: Int

    init(log path: String) throws {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        guard lines.first == "ready" else { throw TestFailure("the client's log does not start with 'ready'") }
        let numbers = lines.dropFirst().compactMap { Int($0) }
        guard numbers.count == lines.count - 1, numbers == (0..<numbers.count).map({ $0 + 1 }) else {
            throw TestFailure("the client's log is not 1, 2, 3...: \(lines.suffix(5))")
        }
        count = numbers.count
    }

    /// The rows of `items` and the counter after transactions 1 through `n`.
    static func state(after n: Int) -> (ids: [Int], counter: Int) {
        guard n > 0 else { return ([], 0) }
        let deleted = Set((1...n).filter { $0 % 5 == 0 && $0 > 50 }.map { $0 - 50 })
        return ((1...n).filter { !deleted.contains($0) }, n)
    }

    /// Nil if `ids` and `counter` are what the committed transactions left, with or without the
    /// next one (in flight at the crash: it may or may not have committed); otherwise what differs.
    func problem(ids: [Int], counter: Int) -> String? {
        for n in [count, count + 1] where CommittedTransactions.state(after: n) == (ids, counter) { return nil }
        let expected = CommittedTransactions.state(after: count)
        let present = Set(ids)
        let missing = expected.ids.filter { !present.contains($0) }
        let unexpected = present.subtracting(expected.ids).subtracting([count + 1]).sorted()
        return "\(count) transactions committed; counter \(counter); \(ids.count) rows; "
            + "committed rows missing: \(missing.prefix(20))\(missing.count > 20 ? " (\(missing.count) in all)" : ""); "
            + "rows that should not be there: \(unexpected.prefix(20))"
    }
}
