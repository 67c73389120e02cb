import Glibc

/// The operator's end of the control channel: sends one request to the node daemon's socket and
/// waits for its answer.
public enum ControlClient {
    /// Where the daemon serves its control socket unless told otherwise.
    public static let defaultSocketPath = "/run/mirror/control.sock"

    /// Sends `request` to the daemon serving `socketPath` and returns its answer, refusals included.
    ///
    /// - Parameter timeout: how long the whole exchange may take (the daemon answers `stop` only
    ///   once the module's stop script has run).
    /// - Throws: ``ControlClientError`` when no answer could be had.
    public static func send(_ request: ControlRequest, to socketPath: String, timeout: Duration) throws -> ControlResponse {
        let deadline = ContinuousClock.now + timeout
        guard socketPath.utf8.count <= UnixSocket.maximumPathLength else {
            throw ControlClientError.failed(path: socketPath, reason: "the path is longer than \(UnixSocket.maximumPathLength) bytes")
        }
        let fd: Int32
        switch UnixSocket.make() {
        case .success(let made): fd = made
        case .failure(let error): throw ControlClientError.failed(path: socketPath, reason: "\(error)")
        }
        defer { close(fd) }
        switch UnixSocket.connect(fd, to: socketPath, deadline: deadline) {
        case 0: break
        case ENOENT: throw ControlClientError.notRunning(path: socketPath, socketExists: false)
        case ECONNREFUSED: throw ControlClientError.notRunning(path: socketPath, socketExists: true)
        case EACCES, EPERM: throw ControlClientError.permissionDenied(path: socketPath)
        case EAGAIN: throw ControlClientError.timedOut(path: socketPath, after: timeout)
        case let code: throw ControlClientError.failed(path: socketPath, reason: "\(SystemError(call: "connect", code: code))")
        }
        let line: String
        do {
            line = try ControlJSON.line(request)
        } catch {
            throw ControlClientError.failed(path: socketPath, reason: "the request cannot be encoded: \(error)")
        }
        // A daemon that refuses without reading (not root, busy) may close before the request is
        // all sent: its answer is read all the same.
        let sendError = UnixSocket.writeAll(fd, Array(line.utf8) + [UInt8(ascii: "\n")], deadline: deadline)
        if sendError == ETIMEDOUT { throw ControlClientError.timedOut(path: socketPath, after: timeout) }
        let response: ControlResponse
        switch UnixSocket.readLine(fd, limit: 64 * 1024 * 1024, deadline: deadline) {
        case .line(let bytes):
            do {
                response = try ControlJSON.decode(ControlResponse.self, from: bytes)
            } catch {
                throw ControlClientError.failed(path: socketPath, reason: "the daemon's answer is not understood: \(error)")
            }
        case .timedOut:
            throw ControlClientError.timedOut(path: socketPath, after: timeout)
        case .closed, .failed:
            throw ControlClientError.failed(path: socketPath, reason: "the daemon closed the connection without answering")
        case .tooLong:
            throw ControlClientError.failed(path: socketPath, reason: "the daemon's answer is larger than 64 MiB")
        }
        if !response.ok, response.error == ControlResponse.rootOnly { throw ControlClientError.permissionDenied(path: socketPath) }
        return response
    }
}

/// Why ``ControlClient`` got no answer from the daemon.
public enum ControlClientError: Error, Equatable, CustomStringConvertible {
    /// No socket file, or one nothing listens on (left by a daemon that died).
    case notRunning(path: String, socketExists: Bool)
    /// The socket or the daemon accepts root only.
    case permissionDenied(path: String)
    /// No answer within the time given.
    case timedOut(path: String, after: Duration)
    /// Anything else, with what happened.
    case failed(path: String, reason: String)

    public var description: String {
        switch self {
        case .notRunning(let path, false): return "the mirror daemon is not running (no socket at \(path))"
        case .notRunning(let path, true): return "the mirror daemon is not running (nothing answers at \(path))"
        case .permissionDenied: return "permission denied: clusterctl must run as root"
        case .timedOut(let path, let after): return "no answer from the mirror daemon at \(path) within \(after)"
        case .failed(let path, let reason): return "cannot talk to the mirror daemon at \(path): \(reason)"
        }
    }
}
