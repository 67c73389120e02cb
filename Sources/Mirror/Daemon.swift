import CLinux
import Glibc

/// A refusal or failure reported to the operator as one line, with exit status 1.
struct Failure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// The child's side of the readiness pipe: one line, "ready" or "error: ...".
struct ReadinessChannel {
    let fd: Int32

    func succeed() { send("ready\n") }

    func fail(_ message: String) { send("error: \(message)\n") }

    private func send(_ line: String) {
        var bytes = Array(line.utf8)
        _ = write(fd, &bytes, bytes.count)
        close(fd)
    }
}

/// Puts the daemon in the background: re-executes this binary in the foreground mode, with its
/// output in a log file, and waits until it reports that the mount answers.
enum Daemon {
    static func spawnAndWaitForReadiness(arguments: [String], logFile: String) throws -> Bool {
        let logFD = open(logFile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard logFD >= 0 else { throw Failure(message: "cannot open log file \(logFile): \(String(cString: strerror(errno)))") }
        defer { close(logFD) }
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw Failure(message: "pipe: \(String(cString: strerror(errno)))") }
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, logFD, 1)
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 3)
        // The daemon outlives this command: it must not hold the invoker's descriptors.
        clinux_spawn_close_from(&actions, 4)

        let executable = try selfExecutable()
        let argv = ([executable] + arguments + ["--ready-fd", "3"]).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        close(pipeFDs[1])
        defer { close(pipeFDs[0]) }
        guard rc == 0 else { throw Failure(message: "cannot start the daemon: \(String(cString: strerror(rc)))") }

        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while true {
            let n = read(pipeFDs[0], &chunk, chunk.count)
            if n > 0 { reply += chunk[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        let line = String(decoding: reply, as: UTF8.self).trimmingCharacters(in: "\n")
        if line == "ready" {
            print("ReplFS daemon running (pid \(pid), log \(logFile))")
            return true
        }
        let message = line.hasPrefix("error: ") ? String(line.dropFirst(7)) : "the daemon exited before the mount was ready; see \(logFile)"
        FileStream.standardError.write("Error: \(message)\n")
        return false
    }

    private static func selfExecutable() throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { throw Failure(message: "cannot find this program's path: \(String(cString: strerror(errno)))") }
        buffer[n] = 0
        return String(cString: buffer)
    }
}

/// Writing to standard error without Foundation.
enum FileStream {
    case standardError

    func write(_ text: String) {
        var bytes = Array(text.utf8)
        _ = Glibc.write(2, &bytes, bytes.count)
    }
}

extension String {
    func trimmingCharacters(in character: Character) -> String {
        var result = Substring(self)
        while result.first == character { result = result.dropFirst() }
        while result.last == character { result = result.dropLast() }
        return String(result)
    }
}
