import Glibc

/// Starts plain POSIX threads: the transport blocks in system calls, and so do its callers
/// (FUSE worker threads), so it uses threads rather than async tasks.
public enum BackgroundThread {
    /// Runs `body` on a new detached thread.
    public static func start(_ body: @escaping () -> Void) {
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
        pthread_detach(thread)
    }
}
