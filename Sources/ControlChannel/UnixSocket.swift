import Glibc

/// The Unix stream socket calls both ends of the control channel share (Glibc only).
enum UnixSocket {
    /// A new stream socket, close-on-exec; the errno on failure.
    static func make() -> Result<Int32, SystemError> {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        return fd >= 0 ? .success(fd) : .failure(.last("socket"))
    }

    /// Runs `body` with the address of `path`; nil when the path does not fit in `sun_path`.
    static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + 1)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// Largest socket path, in bytes.
    static var maximumPathLength: Int { MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1 }

    /// Connects `fd` to `path`, waiting at most `deadline` when the server's backlog is full.
    /// 0 or the errno (`EAGAIN` once the deadline passed).
    static func connect(_ fd: Int32, to path: String, deadline: ContinuousClock.Instant) -> Int32 {
        setTimeout(fd, SO_SNDTIMEO, until: deadline)
        let result = withAddress(path) { Glibc.connect(fd, $0, $1) == 0 ? 0 : errno } ?? ENAMETOOLONG
        setTimeout(fd, SO_SNDTIMEO, until: nil)
        return result
    }

    /// The user id of the process at the other end of a connected socket (SO_PEERCRED), nil if unknown.
    static func peerUID(_ fd: Int32) -> uid_t? {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }: Glibc hides it without _GNU_SOURCE.
        var credentials: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: credentials))
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0,
              Int(length) == MemoryLayout.size(ofValue: credentials) else { return nil }
        return credentials.uid
    }

    /// How reading a line ended.
    enum LineResult: Equatable {
        /// The bytes before the first newline (or before the end, when the writer closed without one).
        case line([UInt8])
        /// The other end closed without sending anything.
        case closed
        /// More than the limit without a newline.
        case tooLong
        /// Nothing complete before the deadline.
        case timedOut
        /// The connection failed.
        case failed
    }

    /// Reads one newline-terminated line of at most `limit` bytes (newline excluded) before `deadline`.
    static func readLine(_ fd: Int32, limit: Int, deadline: ContinuousClock.Instant) -> LineResult {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            guard waitFor(fd, events: POLLIN, until: deadline) else { return .timedOut }
            let count = recv(fd, &chunk, chunk.count, Int32(MSG_DONTWAIT))
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return .failed
            }
            if count == 0 { return received.isEmpty ? .closed : (received.count > limit ? .tooLong : .line(received)) }
            let start = received.count
            received += chunk[..<count]
            if let newline = received[start...].firstIndex(of: UInt8(ascii: "\n")) {
                return newline > limit ? .tooLong : .line(Array(received[..<newline]))
            }
            if received.count > limit { return .tooLong }
        }
    }

    /// Writes all of `bytes` before `deadline`; the errno otherwise (`ETIMEDOUT` when too slow).
    @discardableResult
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], deadline: ContinuousClock.Instant) -> Int32 {
        var done = 0
        while done < bytes.count {
            guard waitFor(fd, events: POLLOUT, until: deadline) else { return ETIMEDOUT }
            let count = bytes[done...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return errno
            }
            done += count
        }
        return 0
    }

    /// Waits until `fd` is ready for `events` (or in error, which the next call reports); false at the deadline.
    static func waitFor(_ fd: Int32, events: Int32, until deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let remaining = deadline - .now
            guard remaining > .zero else { return false }
            var descriptor = pollfd(fd: fd, events: Int16(events), revents: 0)
            let result = poll(&descriptor, 1, milliseconds(remaining))
            if result > 0 { return true }
            if result < 0 && errno != EINTR { return true }
        }
    }

    /// `duration` in whole milliseconds for poll(2), rounded up, at most a minute.
    static func milliseconds(_ duration: Duration) -> Int32 {
        Int32(min(60_000, max(0, (duration / .milliseconds(1)).rounded(.up))))
    }

    private static func setTimeout(_ fd: Int32, _ option: Int32, until deadline: ContinuousClock.Instant?) {
        var value = timeval()
        if let deadline {
            let remaining = max(deadline - .now, .milliseconds(1))
            let (seconds, attoseconds) = remaining.components
            value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        }
        setsockopt(fd, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size))
    }
}

/// A failed system call and its errno.
struct SystemError: Error, CustomStringConvertible {
    let call: String
    let code: Int32

    static func last(_ call: String) -> SystemError { SystemError(call: call, code: errno) }

    /// `call: errno's text`.
    var description: String { "\(call): \(String(cString: strerror(code)))" }
}
