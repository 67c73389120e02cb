import Foundation
import Glibc

/// A TCP server that answers every connection with its name and a newline, then closes it: the
/// "service" behind the virtual IP, so that the client can tell which node it reached. Its
/// listening socket is opened in the namespace of the thread that creates it; it accepts on a
/// thread of its own and is stopped by `stop()` (also at deinit).
public final class NameServer: @unchecked Sendable {
    public let name: String
    public let port: UInt16
    private let listener: Int32
    private let finished = DispatchSemaphore(value: 0)
    private var stopped = false

    public init(name: String, port: UInt16) throws {
        self.name = name
        self.port = port
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var on: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = 0  // INADDR_ANY: also the virtual IP, once added
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else {
            let message = String(cString: strerror(errno))
            close(listener)
            throw TestFailure("\(name): bind/listen on port \(port): \(message)")
        }
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    private func serve() {
        defer { finished.signal() }
        let reply = Array("\(name)\n".utf8)
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return  // EINVAL once stop() shut the listener down
            }
            _ = reply.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            close(client)
        }
    }

    public func stop() {
        guard !stopped else { return }
        stopped = true
        shutdown(listener, Int32(SHUT_RDWR))  // wakes accept() with EINVAL on Linux
        finished.wait()
        close(listener)
    }

    deinit { stop() }
}

/// Connects to `host:port` (in the calling thread's namespace) within `timeout` seconds and returns
/// the first line the server sends; throws on refusal or timeout.
public func fetchLine(host: String, port: UInt16, timeout: Double) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw TestFailure("bad address \(host)") }
    let deadline = now() + timeout
    let started = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if started != 0 && errno != EINPROGRESS { throw TestFailure("connect \(host):\(port): \(String(cString: strerror(errno)))") }
    try waitFor(fd, events: Int16(POLLOUT), until: deadline, what: "connecting to \(host):\(port)")
    var code: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
    guard code == 0 else { throw TestFailure("connect \(host):\(port): \(String(cString: strerror(code)))") }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 256)
    while !bytes.contains(0x0a) {
        try waitFor(fd, events: Int16(POLLIN), until: deadline, what: "reading from \(host):\(port)")
        let count = recv(fd, &chunk, chunk.count, 0)
        if count < 0 && (errno == EAGAIN || errno == EINTR) { continue }
        if count <= 0 { break }
        bytes += chunk[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

private func waitFor(_ fd: Int32, events: Int16, until deadline: Double, what: String) throws {
    while true {
        let remaining = deadline - now()
        guard remaining > 0 else { throw TestFailure("timed out \(what)") }
        var descriptor = pollfd(fd: fd, events: events, revents: 0)
        let ready = poll(&descriptor, 1, Int32(max(1, remaining * 1000)))
        if ready > 0 { return }
        if ready < 0 && errno != EINTR { throw TestFailure("poll: \(String(cString: strerror(errno)))") }
    }
}
