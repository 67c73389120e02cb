import ArgumentParser
import Glibc
import Logging
import ReplFS

/// `mirror mount --dir PATH`: mounts ReplFS over PATH itself.
struct MountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Mount ReplFS over a directory, keeping its path and files.",
        discussion: """
        The directory is opened before mounting and every operation is carried out relative to it, \
        so the application keeps its paths and, once unmounted, finds the very same files. \
        Without --foreground the daemon goes to the background and this command returns once the \
        mount answers. A stale mount left by a killed daemon is detected and detached first.
        """
    )

    @Option(name: .long, help: "The directory to mount over.")
    var dir: String

    @Flag(name: .long, help: "Stay in the foreground (tests, systemd).")
    var foreground = false

    @Option(name: .long, help: "Worker threads serving requests (1: single-threaded loop).")
    var threads = 4

    @Option(name: .long, help: "Seconds the kernel may cache names and attributes.")
    var cacheTimeout = 1.0

    @Flag(name: .long, help: "Copy read replies instead of splicing them from the backing files.")
    var noSplice = false

    @Option(name: .long, help: "Log file of the background daemon.")
    var logFile = "/var/log/mirror-replfs.log"

    @Option(name: .long, help: .hidden)
    var readyFD: Int32?

    func validate() throws {
        guard threads >= 1, threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
        guard cacheTimeout >= 0 else { throw ValidationError("--cache-timeout must be zero or more") }
    }

    func run() throws {
        if !foreground {
            // Refuse here, in the operator's terminal, what the daemon would refuse.
            do {
                try MountPoint.prepare(dir, checkOnly: true) { _ in }
            } catch {
                throw Failure(message: "\(error)")
            }
            let ok = try Daemon.spawnAndWaitForReadiness(arguments: backgroundArguments(), logFile: logFile)
            throw ExitCode(ok ? 0 : 1)
        }
        let readiness = readyFD.map(ReadinessChannel.init)
        if readiness != nil { setsid() }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "replfs")
        logger[metadataKey: "dir"] = "\(dir)"
        do {
            try serve(logger: logger, readiness: readiness)
        } catch {
            guard let readiness else { throw Failure(message: "\(error)") }
            // A daemonized child: the log keeps the reason, the waiting parent prints it.
            logger.error("\(error)")
            readiness.fail("\(error)")
            throw ExitCode(1)
        }
    }

    private func serve(logger: Logger, readiness: ReadinessChannel?) throws {
        let path = try MountPoint.prepare(dir) { logger.warning("\($0)") }
        var options = ReplFSOptions()
        options.cacheTimeout = cacheTimeout
        options.splice = !noSplice
        try MountService.serve(path: path, options: options, threads: threads, replicator: nil,
                               logger: logger, readiness: readiness)
    }

    private func backgroundArguments() -> [String] {
        var arguments = ["mount", "--dir", dir, "--threads", "\(threads)", "--cache-timeout", "\(cacheTimeout)", "--foreground"]
        if noSplice { arguments.append("--no-splice") }
        return arguments
    }
}

/// `mirror umount --dir PATH`.
struct UnmountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "umount",
        abstract: "Unmount ReplFS from a directory; the files underneath are left as they are."
    )

    @Option(name: .long, help: "The directory ReplFS is mounted over.")
    var dir: String

    @Flag(name: .long, help: "Detach now even if files are open (they stay usable until closed).")
    var lazy = false

    func run() throws {
        guard geteuid() == 0 else { throw Failure(message: "\(MountError.notRoot)") }
        do {
            try MountPoint.unmount(dir, lazy: lazy)
        } catch {
            throw Failure(message: "\(error)")
        }
    }
}
