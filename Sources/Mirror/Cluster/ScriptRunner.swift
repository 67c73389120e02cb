import CLinux
import Glibc

/// Runs a module's start or stop script, or a script checker: the program with its arguments,
/// in its own process group, output to the daemon's log, no descriptor of the daemon inherited
/// (FUSE devices, sockets), umask 022 (not the daemon's 0, which ReplFS needs), killed with its
/// group after the timeout.
enum ScriptRunner {
    /// How a script ended.
    enum Outcome: Equatable, CustomStringConvertible {
        case exited(Int32)
        case killedBySignal(Int32)
        case timedOut
        case cannotStart(String)

        var succeeded: Bool { self == .exited(0) }

        var description: String {
            switch self {
            case .exited(let status): return "exit status \(status)"
            case .killedBySignal(let signal): return "killed by signal \(signal)"
            case .timedOut: return "timed out (killed)"
            case .cannotStart(let reason): return "cannot start: \(reason)"
            }
        }
    }

    /// Runs `arguments[0]` with the rest as its arguments and `environment` added to the daemon's.
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Duration,
                    quiet: Bool = false) -> Outcome {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if quiet {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 2, 1)
        }
        clinux_spawn_close_from(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK))

        var variables: [String: String] = [:]
        var index = 0
        while let entry = environ[index] {
            let text = String(cString: entry)
            if let equal = text.firstIndex(of: "=") { variables[String(text[..<equal])] = String(text[text.index(after: equal)...]) }
            index += 1
        }
        for (key, value) in environment { variables[key] = value }
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        // posix_spawn cannot set a umask: a shell sets it, then becomes the program.
        let argv = (["/bin/sh", "-c", "umask 022; exec \"$0\" \"$@\""] + arguments).map { strdup($0) } + [nil]
        defer {
            envp.forEach { free($0) }
            argv.forEach { free($0) }
        }
        var pid = pid_t()
        let rc = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, envp)
        guard rc == 0 else { return .cannotStart(String(cString: strerror(rc))) }
        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        while true {
            let waited = waitpid(pid, &status, WNOHANG)
            if waited == pid { break }
            if waited < 0 && errno != EINTR { return .cannotStart("waitpid: \(String(cString: strerror(errno)))") }
            if ContinuousClock.now >= deadline {
                kill(-pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return .timedOut
            }
            usleep(20_000)
        }
        if status & 0x7f == 0 { return .exited((status >> 8) & 0xff) }
        return .killedBySignal(status & 0x7f)
    }
}
