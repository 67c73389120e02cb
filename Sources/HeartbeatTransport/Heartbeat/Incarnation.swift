import Glibc

/// Incarnations of a channel or client: the wall clock in nanoseconds at its start, so that a
/// restarted node's is greater than any of its earlier ones (receivers refuse older ones, see
/// ``PeerSequence``). Within one process they are also strictly increasing.
public enum Incarnation {
    private static let lock = Lock()
    nonisolated(unsafe) private static var last: UInt64 = 0

    public static func next() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nanoseconds = UInt64(max(0, now.tv_sec)) &* 1_000_000_000 &+ UInt64(max(0, now.tv_nsec))
        return lock.locked {
            last = max(last &+ 1, nanoseconds)
            return last
        }
    }
}

/// A plain mutex for short critical sections.
final class Lock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
