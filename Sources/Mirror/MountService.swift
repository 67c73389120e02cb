import Glibc
import Logging
import ReplFS

/// Serves ReplFS over a directory until it is unmounted or the daemon is signalled: the part of
/// `mirror mount` and of the primary's `mirror run` that mounts.
enum MountService {
    /// Mounts over `path` (already checked by `MountPoint.prepare`) and runs the request loop;
    /// reports readiness once the mount answers.
    static func serve(path: String, options: ReplFSOptions, threads: Int, replicator: Replicator?,
                      logger: Logger, readiness: ReadinessChannel?) throws {
        umask(0)
        let backing = try MountPoint.openBacking(path)
        var st = stat()
        try sys { fstat(backing, &st) }
        let filesystem = try ReplFileSystem(rootFD: backing, options: options, replicator: replicator)
        let session = try FuseSession(filesystem: filesystem, mountPoint: path)
        let backingDevice = UInt64(st.st_dev)
        Threads.detach {
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
        let result = session.run(loop)
        logger.info("unmounted (loop ended with \(result))")
    }
}
