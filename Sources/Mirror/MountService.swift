import Glibc
import Logging
import ReplTransport
import ReplFS

/// Serves ReplFS over a directory until it is unmounted or the daemon is signalled: the part of
/// `mirror mount` and of the primary's `mirror run` that mounts.
enum MountService {
    /// One mount of a node: the directory, how it is served, and its replication.
    struct Mount {
        let path: String
        let options: ReplFSOptions
        let threads: Int
        let replicator: Replicator?
    }

    /// Mounts over `path` (already checked by `MountPoint.prepare`) and runs the request loop;
    /// reports readiness once the mount answers.
    static func serve(path: String, options: ReplFSOptions, threads: Int, replicator: Replicator?,
                      logger: Logger, readiness: ReadinessChannel?) throws {
        try serve([Mount(path: path, options: options, threads: threads, replicator: replicator)], logger: logger,
                  readiness: readiness)
    }

    /// Mounts every directory, then serves them all until SIGTERM, SIGINT or SIGHUP (or until
    /// each is unmounted); readiness once every mount answers. One mount uses libfuse's signal
    /// handling; several are stopped together by a thread that waits for the signals.
    static func serve(_ mounts: [Mount], logger: Logger, readiness: ReadinessChannel?) throws {
        StopSignals.blockInThisAndNewThreads()
        umask(0)
        let single = mounts.count == 1
        var sessions: [(FuseSession, Mount)] = []
        for mount in mounts {
            let backing = try MountPoint.openBacking(mount.path)
            var st = stat()
            try sys { fstat(backing, &st) }
            let filesystem = try ReplFileSystem(rootFD: backing, options: mount.options, replicator: mount.replicator)
            sessions.append((try FuseSession(filesystem: filesystem, mountPoint: mount.path, handleSignals: single), mount))
            let backingDevice = UInt64(st.st_dev)
            BackgroundThread.start {
                if MountPoint.waitUntilServed(mount.path, backingDevice: backingDevice, timeoutSeconds: 30) {
                    logger.info("""
                        mounted \(mount.path) (pid \(getpid()), \(mount.threads) thread(s), splice \(mount.options.splice ? "on" : "off"), \
                        replication \(mount.replicator == nil ? "off" : "on"))
                        """)
                    if mount.path == mounts.last?.path { readiness?.succeed() }
                } else {
                    logger.error("the mount of \(mount.path) did not answer within 30 s")
                    readiness?.fail("the mount of \(mount.path) did not answer within 30 s")
                }
            }
        }
        if !single {
            BackgroundThread.start {
                var set = StopSignals.all
                var signal: Int32 = 0
                sigwait(&set, &signal)
                logger.info("signal \(signal): unmounting \(sessions.count) directories")
                for (session, _) in sessions { session.stop() }
            }
        }
        let finished = Monitor()
        var running = sessions.count
        for (index, (session, mount)) in sessions.enumerated() {
            func loop() {
                var options = FuseSession.LoopOptions()
                options.threads = mount.threads
                let result = session.run(options)
                logger.info("unmounted \(mount.path) (loop ended with \(result))")
                finished.locked {
                    running -= 1
                    finished.broadcast()
                }
            }
            if index == sessions.count - 1 {
                // libfuse's handlers end the loop only if the signal interrupts the thread that waits in it.
                if single { StopSignals.unblockInThisThread() }
                loop()
            } else {
                BackgroundThread.start(loop)
            }
        }
        finished.locked { while running > 0 { _ = finished.wait(until: nil) } }
    }
}

/// SIGTERM, SIGINT and SIGHUP, which stop the daemon: delivered only to the thread that waits for
/// them (the FUSE loop's), never to helper threads (replication, readiness).
enum StopSignals {
    static var all: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&set, signal) }
        return set
    }

    /// Threads started from now on inherit the block.
    static func blockInThisAndNewThreads() {
        var set = all
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    static func unblockInThisThread() {
        var set = all
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}
