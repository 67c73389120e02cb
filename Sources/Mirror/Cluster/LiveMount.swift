import Glibc
import Logging
import ReplFS
import ReplTransport

/// A ReplFS mount the cluster daemon makes and removes while it runs (read-only for a SECOND,
/// read-write for the node that serves): the request loop runs on its own thread until ``stop()``.
final class LiveMount {
    let path: String
    private let session: FuseSession
    private let finished = Monitor()
    private var running = true

    /// Mounts over `path`, serving the copy `copyFD` (an O_PATH descriptor of the directory under
    /// the mount, duplicated here); returns once the mount answers.
    init(path: String, copyFD: Int32, options: ReplFSOptions, threads: Int, replicator: Replicator?, logger: Logger) throws {
        self.path = path
        var st = stat()
        try sys { fstat(copyFD, &st) }
        let root = try sys { fcntl(copyFD, F_DUPFD_CLOEXEC, 0) }
        let filesystem = try ReplFileSystem(rootFD: root, options: options, replicator: replicator)
        session = try FuseSession(filesystem: filesystem, mountPoint: path, handleSignals: false)
        BackgroundThread.start { [self] in
            var loop = FuseSession.LoopOptions()
            loop.threads = threads
            let result = session.run(loop)
            logger.info("unmounted \(path) (loop ended with \(result))")
            finished.locked {
                running = false
                finished.broadcast()
            }
        }
        guard MountPoint.waitUntilServed(path, backingDevice: UInt64(st.st_dev), timeoutSeconds: 30) else {
            stop()
            throw Failure(message: "the mount of \(path) did not answer within 30 s")
        }
        logger.info("mounted \(path) \(options.readOnly ? "read-only" : "read-write")\(replicator == nil ? "" : ", replicated")")
    }

    /// Ends the request loop and waits until the mount is gone.
    func stop() {
        session.stop()
        finished.locked { while running { _ = finished.wait(until: nil) } }
    }
}
