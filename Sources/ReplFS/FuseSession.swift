import CFuse3
import CFuseShim
import Glibc

/// A mounted ReplFS: the libfuse session that serves one ``ReplFileSystem`` at one mount point.
///
/// The adapter between the kernel and the filesystem: it mounts, runs the request loop until
/// unmounted or signalled (SIGTERM, SIGINT, SIGHUP end it cleanly), then unmounts.
public final class FuseSession {
    /// How the request loop runs.
    public struct LoopOptions {
        /// Worker threads; 1 runs the single-threaded loop.
        public var threads: Int = 4
        /// One /dev/fuse descriptor per worker.
        public var cloneFD: Bool = true

        public init() {}
    }

    public let mountPoint: String
    private let filesystem: ReplFileSystem
    private let session: OpaquePointer
    private var mounted = false
    private let handlesSignals: Bool

    /// Creates the session and mounts it over `mountPoint`.
    /// - Parameter handleSignals: install libfuse's SIGTERM/SIGINT/SIGHUP handlers, which end
    ///   this session's loop (one session per process); otherwise the caller ends it with ``stop()``.
    public init(filesystem: ReplFileSystem, mountPoint: String, handleSignals: Bool = true) throws {
        handlesSignals = handleSignals
        self.filesystem = filesystem
        self.mountPoint = mountPoint
        let readOnly = filesystem.options.readOnly ? ",ro" : ""
        let arguments = ["replfs", "-o", "allow_other,default_permissions,fsname=replfs,subtype=replfs" + readOnly]
        var cStrings = arguments.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var ops = makeOperationTable()
        let userdata = Unmanaged.passUnretained(filesystem).toOpaque()
        let created = cStrings.withUnsafeMutableBufferPointer { argv -> OpaquePointer? in
            var args = fuse_args(argc: Int32(argv.count), argv: argv.baseAddress, allocated: 0)
            return fuse_session_new(&args, &ops, MemoryLayout<fuse_lowlevel_ops>.size, userdata)
        }
        guard let created else { throw MountError.sessionCreationFailed }
        session = created
        guard !handleSignals || fuse_set_signal_handlers(session) == 0 else {
            fuse_session_destroy(session)
            throw MountError.signalHandlersFailed
        }
        guard fuse_session_mount(session, mountPoint) == 0 else {
            if handleSignals { fuse_remove_signal_handlers(session) }
            fuse_session_destroy(session)
            throw MountError.mountFailed(mountPoint)
        }
        mounted = true
    }

    /// Serves requests until the mount goes away or a signal asks to stop; then unmounts.
    /// - Returns: libfuse's loop result (0 on a clean end).
    @discardableResult
    public func run(_ loop: LoopOptions = LoopOptions()) -> Int32 {
        let result: Int32
        if loop.threads <= 1 {
            result = fuse_session_loop(session)
        } else {
            result = cfuse_session_loop_mt(session, loop.cloneFD ? 1 : 0, UInt32(loop.threads))
        }
        if handlesSignals { fuse_remove_signal_handlers(session) }
        if mounted {
            fuse_session_unmount(session)
            mounted = false
        }
        return result
    }

    /// Ends the request loop from another thread: the loop stops at its next request, which a
    /// look at the mount point provokes; ``run(_:)`` then unmounts.
    public func stop() {
        fuse_session_exit(session)
        // A new descriptor of the mount point makes the kernel send a request.
        let fd = open(mountPoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { close(fd) }
    }

    deinit {
        if mounted { fuse_session_unmount(session) }
        fuse_session_destroy(session)
    }
}
