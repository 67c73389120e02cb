import Glibc
import Threading

/// The node daemon's end of the control channel: a Unix stream socket that only root may use.
///
/// Each connection carries one request, a single line of JSON (``ControlRequest``), answered by
/// a single line of JSON (``ControlResponse``), then closed. Each connection is served on its own
/// thread, at most ``Limits/maximumConnections`` at once (the others are told the daemon is busy).
/// A client that is not root, sends more than ``Limits/maximumRequestBytes``, sends something
/// that is not a request, or sends nothing in time gets an answer saying so; the server goes on.
///
/// Serving starts in `init`; ``stop()`` closes and removes the socket.
public final class ControlServer: @unchecked Sendable {
    /// Turns a request into its answer; called on the connection's thread, possibly on several at once.
    public typealias Handler = @Sendable (ControlRequest) -> ControlResponse

    /// The bounds of what one client may cost the daemon.
    public struct Limits: Sendable, Equatable {
        /// Largest request line, newline excluded.
        public var maximumRequestBytes: Int
        /// Time a client has to send its request, and then to read its answer.
        public var requestTimeout: Duration
        /// Connections served at once; the next ones get a "busy" answer.
        public var maximumConnections: Int

        public init(maximumRequestBytes: Int = 64 * 1024, requestTimeout: Duration = .seconds(10), maximumConnections: Int = 16) {
            self.maximumRequestBytes = maximumRequestBytes
            self.requestTimeout = requestTimeout
            self.maximumConnections = maximumConnections
        }
    }

    /// The socket's path.
    public let path: String
    public let limits: Limits

    private let handler: Handler
    private let listener: Int32
    private let wakeRead: Int32, wakeWrite: Int32
    /// The socket file this server made (device, inode): ``stop()`` removes only that one.
    private let socketFile: (device: UInt, inode: UInt)
    private let acceptThread: pthread_t
    private let state = Locked(State())

    private struct State {
        var stopped = false
        var connections = 0
    }

    /// Creates the socket at `path` and starts serving.
    ///
    /// The parent directory is created with mode 0700 if it is missing (an existing one is left as
    /// it is); the socket file gets mode 0600. A socket file left by a daemon that is gone is
    /// replaced; one where a server still answers is not.
    public init(path: String, limits: Limits = Limits(), handler: @escaping Handler) throws {
        self.path = path
        self.limits = limits
        self.handler = handler
        guard path.hasPrefix("/") else { throw ControlServerError(path: path, problem: "is not an absolute path") }
        guard path.utf8.count <= UnixSocket.maximumPathLength else {
            throw ControlServerError(path: path, problem: "is longer than \(UnixSocket.maximumPathLength) bytes")
        }
        try Self.makeParent(of: path)
        let listener = try Self.bindReplacingStale(path)
        func failure(_ call: String) -> ControlServerError {
            let error = SystemError.last(call)
            close(listener)
            unlink(path)
            return ControlServerError(path: path, problem: "cannot be served: \(error)")
        }
        var file = stat()
        guard chmod(path, 0o600) == 0 else { throw failure("chmod") }
        guard lstat(path, &file) == 0 else { throw failure("lstat") }
        guard listen(listener, 64) == 0 else { throw failure("listen") }
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw failure("pipe") }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
        }
        self.listener = listener
        (wakeRead, wakeWrite) = (ends[0], ends[1])
        socketFile = (UInt(file.st_dev), UInt(file.st_ino))
        let (listenerFD, wakeFD) = (listener, ends[0])
        let accepted: @Sendable (Int32) -> Void = { [state, limits, handler] fd in
            Self.admit(fd, state: state, limits: limits, handler: handler)
        }
        acceptThread = BackgroundThread.startJoinable { Self.acceptLoop(listener: listenerFD, wake: wakeFD, accepted: accepted) }
    }

    deinit { stop() }

    /// Stops serving: once it returns no connection is accepted, and a connection still reading
    /// its request is answered "the mirror daemon is stopping" instead of reaching the handler;
    /// requests already handed to the handler finish on their threads. Closes the socket and
    /// removes its file, unless another server has replaced it since.
    public func stop() {
        let wasStopped = state.withLock { state in
            defer { state.stopped = true }
            return state.stopped
        }
        guard !wasStopped else { return }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
        pthread_join(acceptThread, nil)
        var file = stat()
        if lstat(path, &file) == 0, UInt(file.st_dev) == socketFile.device, UInt(file.st_ino) == socketFile.inode {
            unlink(path)
        }
        close(listener)
        close(wakeRead)
        close(wakeWrite)
    }

    // MARK: - Creating the socket

    private static func makeParent(of path: String) throws {
        let parent = String(path[..<path.lastIndex(of: "/")!])
        guard !parent.isEmpty else { return }
        var status = stat()
        if stat(parent, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFDIR else {
                throw ControlServerError(path: path, problem: "cannot be created: \(parent) is not a directory")
            }
            return
        }
        guard errno == ENOENT else {
            throw ControlServerError(path: path, problem: "cannot be created: \(SystemError.last("stat \(parent)"))")
        }
        try makeParent(of: parent)
        guard mkdir(parent, 0o700) == 0 || errno == EEXIST else {
            throw ControlServerError(path: path, problem: "cannot be created: \(SystemError.last("mkdir \(parent)"))")
        }
        chmod(parent, 0o700)  // whatever the umask
    }

    /// A socket bound to `path`. An existing socket file is replaced only when nothing answers
    /// there (a daemon that died without removing it); any other kind of file is left alone.
    private static func bindReplacingStale(_ path: String) throws -> Int32 {
        for attempt in 0..<2 {
            let fd: Int32
            switch UnixSocket.make() {
            case .success(let made): fd = made
            case .failure(let error): throw ControlServerError(path: path, problem: "cannot be created: \(error)")
            }
            if UnixSocket.withAddress(path, { bind(fd, $0, $1) }) == 0 { return fd }
            let error = SystemError.last("bind")
            close(fd)
            guard error.code == EADDRINUSE, attempt == 0 else {
                throw ControlServerError(path: path, problem: "cannot be created: \(error)")
            }
            var status = stat()
            guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK else {
                throw ControlServerError(path: path, problem: "exists and is not a socket; remove it if it is not needed")
            }
            if isServed(path) { throw ControlServerError(path: path, problem: nil) }
            unlink(path)
        }
        throw ControlServerError(path: path, problem: "cannot be created: it keeps reappearing")
    }

    /// Something accepts connections at `path`.
    private static func isServed(_ path: String) -> Bool {
        guard case .success(let fd) = UnixSocket.make() else { return false }
        defer { close(fd) }
        let code = UnixSocket.connect(fd, to: path, deadline: .now + .seconds(1))
        // EAGAIN: a live server whose backlog is full.
        return code == 0 || code == EAGAIN
    }

    // MARK: - Serving

    private static func acceptLoop(listener: Int32, wake: Int32, accepted: (Int32) -> Void) {
        while true {
            var descriptors = [pollfd(fd: wake, events: Int16(POLLIN), revents: 0),
                               pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            if poll(&descriptors, 2, -1) < 0 {
                if errno == EINTR { continue }
                return
            }
            if descriptors[0].revents != 0 { return }
            guard descriptors[1].revents != 0 else { continue }
            let fd = accept(listener, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                accepted(fd)
            }
            // Failures (a client that gave up, EMFILE...) concern one connection: poll again.
            else if errno == EMFILE || errno == ENFILE { usleep(100_000) }
        }
    }

    /// Serves `fd` on a thread of its own, or answers "busy" when enough are served already.
    private static func admit(_ fd: Int32, state: Locked<State>, limits: Limits, handler: @escaping Handler) {
        let admitted = state.withLock { state in
            guard state.connections < limits.maximumConnections else { return false }
            state.connections += 1
            return true
        }
        guard admitted else {
            let busy = ControlResponse.refused(
                "the daemon is busy: \(limits.maximumConnections) control requests are being served; try again")
            UnixSocket.writeAll(fd, Self.line(busy), deadline: .now + .milliseconds(100))
            close(fd)
            return
        }
        BackgroundThread.start {
            defer { state.withLock { $0.connections -= 1 } }
            defer { close(fd) }
            let response = serve(fd, state: state, limits: limits, handler: handler)
            UnixSocket.writeAll(fd, Self.line(response), deadline: .now + limits.requestTimeout)
        }
    }

    /// The answer to the one request on `fd`.
    private static func serve(_ fd: Int32, state: Locked<State>, limits: Limits, handler: Handler) -> ControlResponse {
        guard let uid = UnixSocket.peerUID(fd), uid == 0 else {
            return .refused(ControlResponse.rootOnly, message: "the mirror daemon's control socket answers root only")
        }
        let request: ControlRequest
        switch UnixSocket.readLine(fd, limit: limits.maximumRequestBytes, deadline: .now + limits.requestTimeout) {
        case .line(let bytes):
            do {
                request = try ControlJSON.decode(ControlRequest.self, from: bytes)
            } catch {
                return .refused("not a control request: \(error)")
            }
        case .tooLong:
            return .refused("request larger than \(limits.maximumRequestBytes) bytes")
        case .timedOut:
            return .refused("no request received within \(limits.requestTimeout)")
        case .closed, .failed:
            return .refused("connection closed before a request")
        }
        guard !state.withLock({ $0.stopped }) else { return .refused("the mirror daemon is stopping") }
        return handler(request)
    }

    /// `response` as one line of JSON.
    private static func line(_ response: ControlResponse) -> [UInt8] {
        let text = (try? ControlJSON.line(response))
            ?? #"{"error":"the answer could not be encoded","message":"","ok":false}"#
        return Array(text.utf8) + [UInt8(ascii: "\n")]
    }
}

/// Why ``ControlServer`` could not serve its socket.
public struct ControlServerError: Error, Equatable, CustomStringConvertible {
    /// The socket path.
    public let path: String
    /// What is wrong with it; nil when another daemon serves it already.
    public let problem: String?

    public var description: String {
        guard let problem else { return "another mirror daemon already serves \(path)" }
        return "control socket \(path) \(problem)"
    }
}


/// A value behind a pthread mutex, shared by reference between threads.
final class Locked<Value>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` on the value with the mutex held.
    func withLock<T>(_ body: (inout Value) -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body(&value)
    }
}
