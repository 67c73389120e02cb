import Glibc

/// One TCP socket, in blocking mode.
///
/// The descriptor is closed only when the last reference goes away, so a thread still inside
/// `recv` or `send` never finds it reused by another connection; ``shutdown()`` is how to stop
/// a connection at once and wake every thread blocked on it.
final class Socket {
    let descriptor: Int32
    /// The other end, `host:port` (for log lines); empty for a listening socket.
    let remoteAddress: String

    private init(descriptor: Int32, remoteAddress: String) {
        self.descriptor = descriptor
        self.remoteAddress = remoteAddress
    }

    deinit { Glibc.close(descriptor) }

    /// A socket bound to `address` and listening.
    static func listening(on address: NetworkAddress, backlog: Int32 = 64) throws -> Socket {
        var lastError = TransportError.unresolvable(host: address.host, reason: "no address")
        for storage in try AddressResolution.resolve(address, passive: true) {
            do {
                let socket = try Socket(family: storage.ss_family, remoteAddress: "")
                var yes: Int32 = 1
                setsockopt(socket.descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
                try socket.call("bind") { withSocketAddress(storage) { bind(socket.descriptor, $0, $1) } }
                try socket.call("listen") { listen(socket.descriptor, backlog) }
                return socket
            } catch let error as TransportError {
                lastError = error
            }
        }
        throw lastError
    }

    /// A connection to the first address of `address` that answers within `timeout`.
    static func connected(to address: NetworkAddress, timeout: Duration) throws -> Socket {
        var lastError = TransportError.unresolvable(host: address.host, reason: "no address")
        for storage in try AddressResolution.resolve(address, passive: false) {
            do {
                let socket = try Socket(family: storage.ss_family, remoteAddress: AddressResolution.describe(storage))
                try socket.connect(to: storage, timeout: timeout)
                socket.disableNagle()
                return socket
            } catch let error as TransportError {
                lastError = error
            }
        }
        throw lastError
    }

    private convenience init(family: sa_family_t, remoteAddress: String) throws {
        let descriptor = Glibc.socket(Int32(family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TransportError.lastSystemError("socket") }
        self.init(descriptor: descriptor, remoteAddress: remoteAddress)
    }

    /// The port this socket is bound to (the one the kernel chose, after binding port 0).
    var localPort: UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(descriptor, $0, &length) }
        }
        return withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self)) }
    }

    /// Waits for the next incoming connection.
    func accept() throws -> Socket {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let connection = try call("accept") {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(descriptor, $0, &length) }
            }
        }
        _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
        let socket = Socket(descriptor: connection, remoteAddress: AddressResolution.describe(storage))
        socket.disableNagle()
        return socket
    }

    /// Reads what has arrived, at most `buffer.count` bytes; waits for data until `deadline`
    /// (forever if `nil`). Returns 0 once the peer closed the connection.
    func receive(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant?) throws -> Int {
        if let deadline { try waitUntilReadable(before: deadline) }
        return try call("recv") { recv(descriptor, buffer.baseAddress, buffer.count, 0) }
    }

    /// Sends all of `bytes`; never raises SIGPIPE on a broken connection.
    func send(_ bytes: UnsafeRawBufferPointer) throws {
        var sent = 0
        while sent < bytes.count {
            sent += try call("send") {
                Glibc.send(descriptor, bytes.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            }
        }
    }

    /// Sends all of `bytes`.
    func send(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try send($0) }
    }

    /// Ends the connection in both directions; blocked `recv`, `send` and `accept` calls return.
    func shutdown() {
        _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
    }

    private func connect(to storage: sockaddr_storage, timeout: Duration) throws {
        let flags = fcntl(descriptor, F_GETFL)
        _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
        let started = withSocketAddress(storage) { Glibc.connect(descriptor, $0, $1) }
        if started != 0 {
            guard errno == EINPROGRESS else { throw TransportError.lastSystemError("connect to \(remoteAddress)") }
            try waitUntilWritable(before: .now + timeout)
            var failure: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &failure, &length)
            guard failure == 0 else { throw TransportError.system(call: "connect to \(remoteAddress)", errno: failure) }
        }
        _ = fcntl(descriptor, F_SETFL, flags)
    }

    private func disableNagle() {
        var yes: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
    }

    private func waitUntilReadable(before deadline: ContinuousClock.Instant) throws {
        guard try poll(for: Int16(POLLIN), until: deadline) else {
            throw TransportError.timedOut("nothing received from \(remoteAddress)")
        }
    }

    private func waitUntilWritable(before deadline: ContinuousClock.Instant) throws {
        guard try poll(for: Int16(POLLOUT), until: deadline) else {
            throw TransportError.timedOut("connect to \(remoteAddress)")
        }
    }

    /// Whether `events` (or an error or hang-up) occurred before `deadline`.
    private func poll(for events: Int16, until deadline: ContinuousClock.Instant) throws -> Bool {
        while true {
            let remaining = deadline - .now
            guard remaining > .zero else { return false }
            let milliseconds = Int32(clamping: Int((remaining / .milliseconds(1)).rounded(.up)))
            var entry = pollfd(fd: descriptor, events: events, revents: 0)
            let ready = try call("poll") { Glibc.poll(&entry, 1, milliseconds) }
            if ready > 0 { return true }
        }
    }

    /// Runs a system call that returns -1 and sets `errno` on failure; retries on `EINTR`.
    @discardableResult
    private func call<T: BinaryInteger>(_ name: String, _ body: () -> T) throws -> T {
        while true {
            let result = body()
            if result >= 0 { return result }
            if errno != EINTR { throw TransportError.lastSystemError(name) }
        }
    }
}

/// Calls `body` with `storage` as the `sockaddr` pointer and length that bind(2) and connect(2) take.
private func withSocketAddress<T>(_ storage: sockaddr_storage,
                                  _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
    let length = AddressResolution.length(of: storage)
    var storage = storage
    return withUnsafePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
    }
}
