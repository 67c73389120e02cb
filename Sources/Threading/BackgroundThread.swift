import Glibc

/// Starts plain POSIX threads: the transport, the control socket and the health endpoint block
/// in system calls, and so do their callers (FUSE worker threads), so they use threads rather
/// than async tasks.
public enum BackgroundThread {
    /// Runs `body` on a new detached thread.
    public static func start(_ body: @escaping () -> Void) {
        pthread_detach(startJoinable(body))
    }

    /// Runs `body` on a new thread that the caller joins (`pthread_join`).
    public static func startJoinable(_ body: @escaping () -> Void) -> pthread_t {
        final class Box {
            let body: () -> Void
            init(_ body: @escaping () -> Void) { self.body = body }
        }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box)
        precondition(result == 0, "pthread_create failed: errno \(result)")
        return thread
    }
}
