import Glibc
import Logging
import ReplTransport
import ReplFS

/// Serves ReplFS over a directory until it is unmounted or the daemon is signalled: the part of
/// `mirror mount` and of the primary's `mirror run` that mounts.
enum MountService {
    /// Mounts over `path` (already checked by `MountPoint.prepare`) and runs the request loop;
    /// reports readiness once the mount answers.
    static func serve(path: String, options: ReplFSOptions, threads: Int, replicator: Replicator?,
                      logger: Logger, readiness: ReadinessChannel?) throws {
        StopSignals.blockInThisAndNewThreads()
        umask(0)
        let backing = try MountPoint.openBacking(path)
        var st = stat()
        try sys { fstat(backing, &st) }
        let filesystem = try ReplFileSystem(rootFD: backing, options: options, replicator: replicator)
        let session = try FuseSession(filesystem: filesystem, mountPoint: path)
        let backingDevice = UInt64(st.st_dev)
        BackgroundThread.start {
            if MountPoint.waitUntilServed(path, backingDevice: backingDevice, timeoutSeconds: 30) {
                logger.info("mounted (pid \(getpid()), \(threads) thread(s), splice \(options.splice ? "on" : "off"), replication \(replicator == nil ? "off" : "on"))")
                readiness?.succeed()
            } else {
                logger.error("the mount did not answer within 30 s")
                readiness?.fail("the mount did not answer within 30 s")
            }
        }
        var loop = FuseSession.LoopOptions()
        loop.threads = threads
        // libfuse's handlers end the loop only if the signal interrupts the thread that waits in it.
        StopSignals.unblockInThisThread()
        let result = session.run(loop)
        logger.info("unmounted (loop ended with \(result))")
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
