import Foundation
import Glibc
import TestSupport

/// The network between the two nodes, as a child process: a TCP relay that holds what the
/// primary sends for `delay` before passing it on (the secondary's answers go straight back).
///
/// Killing the primary's process alone cannot lose what it already wrote to its socket: the
/// kernel still delivers it. A crashed machine loses it, and so does the relay: ``freeze()`` it
/// (SIGSTOP: nothing more passes in either direction), kill the primary, then ``stop()`` it
/// (SIGKILL: its sockets are reset, and what it held is lost).
final class DelayingRelay {
    static let script = #"""
        import collections, signal, socket, struct, sys, threading, time
        listen_host, listen_port, target_host, target_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        configured = float(sys.argv[5])
        delay = configured if sys.argv[6] == "delayed" else 0.0

        def delay_from_now_on(*_):
            global delay
            delay = configured

        signal.signal(signal.SIGUSR1, delay_from_now_on)

        def prepare(connection):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Closed by a kill: reset, whatever is unsent is dropped (no graceful flush).
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

        def close(*connections):
            for connection in connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def straight(source, target):
            try:
                while data := source.recv(1 << 16):
                    target.sendall(data)
            except OSError:
                pass
            close(source, target)

        def delayed(source, target):
            queue, ready, ended = collections.deque(), threading.Condition(), []
            def forward():
                while True:
                    with ready:
                        while not queue and not ended:
                            ready.wait()
                        if not queue:
                            break
                        due, data = queue.popleft()
                    time.sleep(max(0.0, due - time.monotonic()))
                    try:
                        target.sendall(data)
                    except OSError:
                        break
                close(source, target)
            threading.Thread(target=forward, daemon=True).start()
            try:
                while data := source.recv(1 << 16):
                    with ready:
                        queue.append((time.monotonic() + delay, data))
                        ready.notify()
            except OSError:
                pass
            with ready:
                ended.append(True)
                ready.notify()

        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((listen_host, listen_port))
        server.listen(8)
        print("ready", flush=True)
        while True:
            client, _ = server.accept()
            try:
                upstream = socket.create_connection((target_host, target_port))
            except OSError:
                client.close()
                continue
            prepare(client)
            prepare(upstream)
            threading.Thread(target=delayed, args=(client, upstream), daemon=True).start()
            threading.Thread(target=straight, args=(upstream, client), daemon=True).start()
        """#

    let process = Process()
    /// Where the primary connects instead of the secondary ("host:port").
    let address: String

    /// Starts relaying from 127.0.0.3 (a free port) to the secondary at 127.0.0.2:`secondaryPort`;
    /// with `delayed` false, without delay until ``delayFromNowOn()`` (for a quicker set-up).
    init(to secondaryPort: UInt16, delay: TimeInterval, delayed: Bool = true, scratch: ScratchDirectory) throws {
        let port = try freePort(on: "127.0.0.3")
        address = "127.0.0.3:\(port)"
        let scriptPath = scratch.path + "/relay.py"
        let outputPath = scratch.path + "/relay.out"
        try Self.script.write(toFile: scriptPath, atomically: false, encoding: .utf8)
        guard FileManager.default.createFile(atPath: outputPath, contents: nil),
              let output = FileHandle(forWritingAtPath: outputPath) else { throw TestFailure("cannot create \(outputPath)") }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [scriptPath, "127.0.0.3", "\(port)", "127.0.0.2", "\(secondaryPort)", "\(delay)",
                             delayed ? "delayed" : "undelayed"]
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while !((try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "").contains("ready") {
            guard process.isRunning, Date() < deadline else {
                stop()
                throw TestFailure("the relay did not start: \((try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")")
            }
            usleep(5_000)
        }
    }

    /// Holds what the primary sends for the delay given at the start, from now on.
    func delayFromNowOn() {
        if process.isRunning { kill(process.processIdentifier, SIGUSR1) }
    }

    /// Freezes the relay: from now on nothing passes in either direction.
    func freeze() {
        if process.isRunning { kill(process.processIdentifier, SIGSTOP) }
    }

    /// Kills the relay (frozen or not) and everything it still held.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}
