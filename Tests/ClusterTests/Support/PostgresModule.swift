import Foundation
import Glibc
import TestSupport

/// PostgreSQL 15 as a cluster module's application: its data directory `pgdata` inside the
/// module's replicated directory, started and stopped by the module's scripts on the node's
/// copy, listening on every address of the node (so on the virtual IP too), port 5432, its Unix
/// socket in `PREFIX/var/run/postgresql` and its log in `PREFIX/var/log/postgresql/MODULE.log`
/// (not replicated; Debian's places on a real node, whose path prefix is empty).
enum PostgresModule {
    static let port = 5432

    /// The module: `name`, these scripts, the virtual IP `vip` (with prefix length) on `interface`.
    static func spec(name: String = "AM", vip: String, interface: String = "veth-am") -> ClusterLab.ModuleSpec {
        ClusterLab.ModuleSpec(name: name, virtualIPs: [(vip, interface)], scripts: (start, stop))
    }

    /// The data directory on `node` (under its mount while the daemon runs).
    static func dataDirectory(_ lab: ClusterLab, _ node: String, module: String = "AM") -> String {
        lab.directory(node, module) + "/pgdata"
    }

    /// initdb on `node`'s copy, before its daemon first starts (the copy is a plain directory
    /// then), trusting the lab's subnet: clients connect through the virtual IP.
    static func initialize(_ lab: ClusterLab, on node: String, module: String = "AM", clients: String = "10.77.0.0/24") throws {
        let data = dataDirectory(lab, node, module: module)
        guard let account = PostgresServer.postgresAccount else { throw TestFailure("no postgres user: run scripts/install-deps.sh") }
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: false)
        guard chown(data, account.uid, account.gid) == 0, chmod(data, 0o700) == 0 else {
            throw TestFailure("cannot give \(data) to postgres: \(String(cString: strerror(errno)))")
        }
        let server = PostgresServer(data: data, socketDirectory: lab.scratch.path)
        try server.initdb()
        let hba = try FileHandle(forWritingTo: URL(fileURLWithPath: data + "/pg_hba.conf"))
        try hba.seekToEnd()
        try hba.write(contentsOf: Data("host all all \(clients) trust\n".utf8))
        try hba.close()
    }

    /// The server `node`'s start script started (its Unix socket), for queries from this
    /// namespace; nil if none runs there.
    static func runningServer(_ lab: ClusterLab, on node: String, module: String = "AM") -> PostgresServer? {
        let server = PostgresServer(data: dataDirectory(lab, node, module: module),
                                    socketDirectory: "\(lab.scratch.path)/\(node)/var/run/postgresql", port: port)
        return server.adoptRunningServer() ? server : nil
    }

    /// The System V shared memory segment of the postmaster running on `node`'s copy
    /// (postmaster.pid's 7th line: key and id); read through the live mount.
    static func sharedMemorySegment(_ lab: ClusterLab, on node: String, module: String = "AM") -> Int32? {
        guard let text = try? String(contentsOfFile: dataDirectory(lab, node, module: module) + "/postmaster.pid", encoding: .utf8) else {
            return nil
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count > 6 else { return nil }
        return lines[6].split(separator: " ").last.flatMap { Int32($0) }
    }

    /// Removes the segment of a postmaster killed with its backends (a crash leaves it behind;
    /// a clean shutdown removes it).
    static func removeSegment(_ id: Int32) {
        _ = shmctl(id, IPC_RMID, nil)
    }

    /// The end of both nodes' PostgreSQL logs, for a failure's report.
    static func serverLogs(_ lab: ClusterLab, module: String = "AM") -> String {
        ClusterLab.nodes.map { node in
            let path = "\(lab.scratch.path)/\(node)/var/log/postgresql/\(module).log"
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(none)"
            return "\(node)'s PostgreSQL log:\n\(text.suffix(3000))"
        }.joined(separator: "\n")
    }

    /// Starts PostgreSQL on this node's copy, unless it already runs there. A postmaster.pid that
    /// came with the data (replicated by the peer, or left by a crash) is stale unless a
    /// postmaster runs on this very directory here: a postmaster's working directory is its
    /// data directory; any other process with that PID (or a zombie) is not it.
    static let start = #"""
        #!/bin/sh
        # Start script of a mirror module whose application is PostgreSQL 15 (cluster tests).
        set -eu
        umask 022   # the daemon's is 0
        cd /
        bin=/usr/lib/postgresql/15/bin
        data="$MIRROR_PATH_PREFIX/srv/$MIRROR_MODULE/pgdata"
        run="$MIRROR_PATH_PREFIX/var/run/postgresql"
        logs="$MIRROR_PATH_PREFIX/var/log/postgresql"
        leader="$MIRROR_PATH_PREFIX/log/$MIRROR_MODULE.pid"
        mkdir -p "$run" "$logs"
        chown postgres:postgres "$run" "$logs"
        if [ -f "$data/postmaster.pid" ]; then
            pid=$(head -n 1 "$data/postmaster.pid")
            if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$data" ]; then
                echo "PostgreSQL already runs on $data (postmaster $pid)"
                echo "$pid" > "$leader"
                exit 0
            fi
            echo "removing the stale postmaster.pid (postmaster ${pid:-?} does not run here)"
            rm -f "$data/postmaster.pid"
        fi
        runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$logs/$MIRROR_MODULE.log" -w -t 100 \
            -o "-c listen_addresses='*' -c unix_socket_directories='$run' -p 5432" start
        head -n 1 "$data/postmaster.pid" > "$leader"
        """#

    /// Stops PostgreSQL on this node's copy if it runs here: fast shutdown (sessions cut at once),
    /// immediate if that does not finish; succeeds when nothing runs (idempotent).
    static let stop = #"""
        #!/bin/sh
        # Stop script of a mirror module whose application is PostgreSQL 15 (cluster tests).
        set -u
        cd /
        bin=/usr/lib/postgresql/15/bin
        data="$MIRROR_PATH_PREFIX/srv/$MIRROR_MODULE/pgdata"
        leader="$MIRROR_PATH_PREFIX/log/$MIRROR_MODULE.pid"
        pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
        # Its postmaster, by its command line (a daemon's death leaves its cwd on a dead mount).
        if [ -n "$pid" ] && tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$data"; then
            if ! runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m fast -w -t 30 stop; then
                echo "fast shutdown did not finish: immediate shutdown"
                runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m immediate -w -t 10 stop || kill -9 "$pid"
            fi
        else
            echo "PostgreSQL does not run on $data"
        fi
        rm -f "$leader"
        exit 0
        """#
}

/// A client of the module's PostgreSQL through the virtual IP, run in the lab's client
/// namespace (Python, the frontend/backend protocol over TCP, trust authentication): it inserts
/// row 1, 2, 3... into `items`, one INSERT per transaction (autocommit), and appends `N TIME`
/// to its log once the server reported row N committed (TIME: CLOCK_MONOTONIC seconds, the
/// clock of ``now()``). On any error (refused, timed out, reset, server starting up) it logs
/// `error N TIME why`, reconnects 50 ms later and goes on with the next number: the outcome of
/// an insert whose answer was lost is unknown, so its row may or may not exist.
final class InsertingClient {
    let process: Process
    let logPath: String

    static let script = #"""
        import os, socket, struct, sys, time
        host, port, log_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

        def record(text):
            os.write(log, f"{text}\n".encode())

        class ServerError(Exception):
            pass

        def exactly(connection, count, error=None):
            data = b""
            while len(data) < count:
                chunk = connection.recv(count - len(data))
                if not chunk:
                    raise ServerError(error) if error else ConnectionError("closed by the server")
                data += chunk
            return data

        def until_ready(connection):
            error = None
            while True:
                header = exactly(connection, 5, error)
                kind, body = header[:1], exactly(connection, struct.unpack("!I", header[1:])[0] - 4, error)
                if kind == b"E":
                    fields = {field[:1]: field[1:] for field in body.split(b"\0") if field}
                    error = fields.get(b"M", body).decode(errors="replace")
                elif kind == b"R" and struct.unpack("!I", body[:4])[0] != 0:
                    raise ServerError("the server asks for a password: trust authentication expected")
                elif kind == b"Z":
                    if error is not None:
                        raise ServerError(error)
                    return

        def connect():
            connection = socket.create_connection((host, port), timeout=0.5)
            connection.settimeout(2)
            startup = struct.pack("!I", 196608) + b"user\0postgres\0database\0postgres\0\0"
            connection.sendall(struct.pack("!I", len(startup) + 4) + startup)
            until_ready(connection)
            return connection

        payload = "p" * 200
        connection, n = None, 0
        while True:
            try:
                if connection is None:
                    connection = connect()
                    record(f"connected {time.monotonic():.6f}")
                n += 1
                body = f"INSERT INTO items(id, payload) VALUES ({n}, '{payload}')".encode() + b"\0"
                connection.sendall(b"Q" + struct.pack("!I", len(body) + 4) + body)
                until_ready(connection)
                record(f"{n} {time.monotonic():.6f}")
            except Exception as error:
                record(f"error {n} {time.monotonic():.6f} {type(error).__name__}: {error}")
                if connection is not None:
                    connection.close()
                    connection = None
                time.sleep(0.05)
        """#

    /// Starts the client in `host`'s namespace of `network` against `address`.
    init(network: NetworkLab, in host: NetworkLab.Host = .client, address: String, port: Int = PostgresModule.port,
         scratch: ScratchDirectory) throws {
        let scriptPath = scratch.path + "/inserting-client.py"
        try Self.script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        logPath = scratch.path + "/inserting-client.log"
        let outputPath = scratch.path + "/inserting-client.out"
        guard FileManager.default.createFile(atPath: logPath, contents: nil),
              FileManager.default.createFile(atPath: outputPath, contents: nil),
              let output = FileHandle(forWritingAtPath: outputPath) else { throw TestFailure("cannot create the client's files") }
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        process.arguments = ["--net=\(network.namespacePath(host))", "/usr/bin/python3", scriptPath, address, "\(port)", logPath]
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    deinit { stop() }

    /// Kills the client by PID.
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// The rows the server reported committed, with when (``now()`` seconds), in order.
    var commits: [(row: Int, at: Double)] {
        lines.compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 2, let row = Int(fields[0]), let at = Double(fields[1]) else { return nil }
            return (row, at)
        }
    }

    /// The errors the client met, as it logged them.
    var errors: [String] { lines.filter { $0.hasPrefix("error ") } }

    private var lines: [String] {
        ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Waits until the client has `count` more commits than `after` (it must still run).
    func waitForCommits(_ count: Int, after: Int, timeout: TimeInterval = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while commits.count < after + count {
            guard process.isRunning else { throw TestFailure("the client stopped:\n\(errors.suffix(5).joined(separator: "\n"))") }
            guard Date() < deadline else {
                throw TestFailure("the client did not commit \(count) more rows within \(timeout) s; last errors:\n"
                    + errors.suffix(5).joined(separator: "\n"))
            }
            usleep(20_000)
        }
    }
}
