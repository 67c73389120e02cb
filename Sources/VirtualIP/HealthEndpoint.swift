import Glibc
import Threading

/// A tiny HTTP/1.1 server for load balancers: `GET /health/MODULE` answers 200 with the state
/// name where the module is PRIM or ALONE, 503 with the state elsewhere, 404 for an unknown module.
///
/// One thread serves every connection with poll(2): a slow or silent client never holds up the
/// others, each connection has a deadline, a request head is bounded, and every connection is
/// closed after its one answer. States come from `states`, called on the serving thread.
public final class HealthEndpoint: @unchecked Sendable {
    public typealias StateLookup = @Sendable (_ module: String) -> String?

    public struct Limits: Sendable, Equatable {
        /// Largest request head (request line and headers) accepted; beyond it, 431.
        public var maximumRequestBytes: Int
        /// Seconds a client has to send its request head; then 408.
        public var requestTimeout: Double
        /// Connections served at once; more wait in the kernel's backlog.
        public var maximumConnections: Int

        public init(maximumRequestBytes: Int = 8192, requestTimeout: Double = 2, maximumConnections: Int = 64) {
            self.maximumRequestBytes = maximumRequestBytes
            self.requestTimeout = requestTimeout
            self.maximumConnections = maximumConnections
        }
    }

    /// The address it listens on, as given.
    public let host: String
    /// The port it listens on (the one the kernel chose when asked for port 0).
    public let port: UInt16
    public let limits: Limits

    private let states: StateLookup
    private let listener: Int32
    private let wakeRead: Int32, wakeWrite: Int32
    private var thread: pthread_t?
    private var stopped = false
    private let lock = Mutex()

    /// Binds and listens at once (so a busy port is reported here); serving starts with `start()`.
    /// `host` is an IPv4 or IPv6 literal: "0.0.0.0", "::", "127.0.0.1"...
    public init(host: String = "0.0.0.0", port: UInt16 = 0, limits: Limits = Limits(), states: @escaping StateLookup) throws {
        self.host = host
        self.limits = limits
        self.states = states
        let (listener, port) = try Self.listen(host: host, port: port)
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else {
            let code = errno
            close(listener)
            throw HealthEndpointError(host: host, port: port, operation: "pipe", errno: code)
        }
        for end in pipeEnds { Self.makeNonBlocking(end) }
        self.listener = listener
        self.port = port
        (wakeRead, wakeWrite) = (pipeEnds[0], pipeEnds[1])
    }

    deinit { stop() }

    /// Starts the serving thread (once).
    public func start() {
        lock.locked {
            guard thread == nil, !stopped else { return }
            thread = BackgroundThread.startJoinable { [unowned self] in serve() }
        }
    }

    /// Stops serving: wakes the thread, waits for it to finish (it closes every connection), then
    /// closes the listening socket, which frees the port. Called at deinit too; a stopped endpoint
    /// cannot be started again.
    public func stop() {
        let (wasStopped, running): (Bool, pthread_t?) = lock.locked {
            defer { stopped = true }
            return (stopped, thread)
        }
        guard !wasStopped else { return }
        if let running {
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
            pthread_join(running, nil)
        }
        close(listener)
        close(wakeRead)
        close(wakeWrite)
    }

    // MARK: - Serving

    private enum Phase {
        case reading([UInt8])
        case writing(ArraySlice<UInt8>)
        /// Answer sent and our side shut down: discard what the client still sends until it closes,
        /// so that closing never resets the connection before the client read the answer.
        case draining
    }

    private struct Connection {
        var phase: Phase
        var deadline: Double
    }

    private func serve() {
        var connections: [Int32: Connection] = [:]
        defer { for fd in connections.keys { close(fd) } }
        while true {
            var descriptors = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            if connections.count < limits.maximumConnections {
                descriptors.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0))
            }
            for (fd, connection) in connections {
                if case .writing = connection.phase {
                    descriptors.append(pollfd(fd: fd, events: Int16(POLLOUT), revents: 0))
                } else {
                    descriptors.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
                }
            }
            let now = monotonicNow()
            let nearest = connections.values.map(\.deadline).min().map { max(0, $0 - now) } ?? 1
            let ready = poll(&descriptors, nfds_t(descriptors.count), Int32(min(1000, (nearest * 1000).rounded(.up))))
            if ready < 0 && errno != EINTR { return }
            for descriptor in descriptors where descriptor.revents != 0 {
                if descriptor.fd == wakeRead { return }
                if descriptor.fd == listener {
                    acceptAll(into: &connections)
                } else if var connection = connections[descriptor.fd] {
                    if advance(descriptor.fd, &connection) {
                        connections[descriptor.fd] = connection
                    } else {
                        close(descriptor.fd)
                        connections[descriptor.fd] = nil
                    }
                }
            }
            let later = monotonicNow()
            for (fd, connection) in connections where connection.deadline <= later {
                if case .reading = connection.phase {
                    // Too slow: say so, best effort, and close.
                    let answer = HealthResponse.error(408, "request not received in time").bytes
                    _ = answer.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                }
                close(fd)
                connections[fd] = nil
            }
        }
    }

    private func acceptAll(into connections: inout [Int32: Connection]) {
        while connections.count < limits.maximumConnections {
            let fd = Self.acceptNonBlocking(listener)
            if fd < 0 { return }  // EAGAIN, or an aborted connection: poll tells us when there is more
            connections[fd] = Connection(phase: .reading([]), deadline: monotonicNow() + limits.requestTimeout)
        }
    }

    /// Moves one connection on after poll said it is ready; false when it is finished.
    private func advance(_ fd: Int32, _ connection: inout Connection) -> Bool {
        switch connection.phase {
        case .reading(var buffer):
            var chunk = [UInt8](repeating: 0, count: 2048)
            let received = recv(fd, &chunk, chunk.count, Int32(MSG_DONTWAIT))
            if received < 0 { return errno == EAGAIN || errno == EINTR }
            if received == 0 {
                // The client stopped sending before a complete head: answer if it sent anything.
                guard !buffer.isEmpty else { return false }
                return respond(fd, &connection, .error(400, "malformed request: incomplete request head"))
            }
            buffer += chunk[0..<received]
            if let end = Self.endOfHead(buffer) {
                let response = end > limits.maximumRequestBytes
                    ? HealthResponse.error(431, "request head larger than \(limits.maximumRequestBytes) bytes")
                    : HealthRequest.respond(toHead: buffer[..<end], states: states)
                return respond(fd, &connection, response)
            }
            if buffer.count > limits.maximumRequestBytes {
                return respond(fd, &connection, .error(431, "request head larger than \(limits.maximumRequestBytes) bytes"))
            }
            connection.phase = .reading(buffer)
            return true
        case .writing(let remaining):
            return flush(fd, &connection, remaining)
        case .draining:
            var sink = [UInt8](repeating: 0, count: 2048)
            let received = recv(fd, &sink, sink.count, Int32(MSG_DONTWAIT))
            return received > 0 || (received < 0 && (errno == EAGAIN || errno == EINTR))
        }
    }

    private func respond(_ fd: Int32, _ connection: inout Connection, _ response: HealthResponse) -> Bool {
        connection.deadline = monotonicNow() + limits.requestTimeout
        return flush(fd, &connection, response.bytes[...])
    }

    private func flush(_ fd: Int32, _ connection: inout Connection, _ bytes: ArraySlice<UInt8>) -> Bool {
        var remaining = bytes
        while !remaining.isEmpty {
            let sent = remaining.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if sent < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN {
                    connection.phase = .writing(remaining)
                    return true
                }
                return false
            }
            remaining = remaining.dropFirst(sent)
        }
        shutdown(fd, Int32(SHUT_WR))
        connection.phase = .draining
        return true
    }

    /// The length of the request head (without its blank line) once the blank line arrived.
    static func endOfHead(_ buffer: [UInt8]) -> Int? {
        guard buffer.count >= 2 else { return nil }
        for index in 1..<buffer.count where buffer[index] == 0x0a {
            if buffer[index - 1] == 0x0a { return index }  // LF LF
            if index >= 3, buffer[index - 1] == 0x0d, buffer[index - 2] == 0x0a { return index - 1 }  // LF CR LF
        }
        return nil
    }

    // MARK: - Listening socket

    /// O_NONBLOCK and FD_CLOEXEC on a descriptor of our own.
    private static func makeNonBlocking(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    private typealias Accept4 = @convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32
    /// accept4(2), which Swift's Glibc module hides behind _GNU_SOURCE: close-on-exec from the
    /// start, so a script the daemon runs meanwhile never inherits a client's connection.
    private static let accept4: Accept4? = dlsym(nil, "accept4").map { unsafeBitCast($0, to: Accept4.self) }

    private static func acceptNonBlocking(_ listener: Int32) -> Int32 {
        if let accept4 {
            return accept4(listener, nil, nil, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
        }
        let fd = accept(listener, nil, nil)
        if fd >= 0 { makeNonBlocking(fd) }
        return fd
    }

    private static func listen(host: String, port: UInt16) throws -> (Int32, UInt16) {
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        let family: Int32
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            family = AF_INET
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
        } else if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 {
            family = AF_INET6
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
        } else {
            throw HealthEndpointError(host: host, port: port, operation: "parsing the listen address (an IP literal)", errno: EINVAL)
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw HealthEndpointError(host: host, port: port, operation: "socket", errno: errno) }
        var on: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        let bound = family == AF_INET
            ? withUnsafePointer(to: &v4) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            : withUnsafePointer(to: &v6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        guard bound == 0, Glibc.listen(fd, 128) == 0 else {
            let code = errno
            close(fd)
            throw HealthEndpointError(host: host, port: port, operation: bound == 0 ? "listen" : "bind", errno: code)
        }
        var actual = sockaddr_in6()  // large enough for both; the port sits at the same offset
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return (fd, UInt16(bigEndian: actual.sin6_port))
    }
}

/// The health endpoint could not listen.
public struct HealthEndpointError: Error, Equatable, CustomStringConvertible {
    public let host: String
    public let port: UInt16
    public let operation: String
    public let errno: Int32

    public var description: String {
        "health endpoint on \(host.contains(":") ? "[\(host)]" : host):\(port): \(operation) failed: \(errorText(errno))"
    }
}

/// A pthread mutex (no Foundation in this module).
final class Mutex: @unchecked Sendable {
    private var mutex = pthread_mutex_t()

    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}
