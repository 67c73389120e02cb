import Glibc
import ReplTransport

/// Why a UDP socket could not be made or used; each reads as one log line.
public enum DatagramSocketError: Error, Equatable, CustomStringConvertible {
    case system(call: String, errno: Int32)
    case unresolvable(host: String, reason: String)

    public var description: String {
        switch self {
        case .system(let call, let code): return "\(call): \(String(cString: strerror(code))) (errno \(code))"
        case .unresolvable(let host, let reason): return "cannot resolve '\(host)': \(reason)"
        }
    }

    static func last(_ call: String) -> DatagramSocketError { .system(call: call, errno: errno) }
}

/// A resolved socket address (IPv4 or IPv6).
struct SocketAddress: CustomStringConvertible {
    var storage: sockaddr_storage

    var family: Int32 { Int32(storage.ss_family) }

    var length: socklen_t { AddressResolution.length(of: storage) }

    /// Every datagram-socket address of `address`, in the order getaddrinfo(3) prefers.
    static func resolve(_ address: NetworkAddress, passive: Bool) throws -> [SocketAddress] {
        do {
            return try AddressResolution.resolve(address, passive: passive, type: SOCK_DGRAM).map(SocketAddress.init)
        } catch TransportError.unresolvable(let host, let reason) {
            throw DatagramSocketError.unresolvable(host: host, reason: reason)
        }
    }

    func withPointer<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var storage = storage
        let length = length
        return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }

    /// `host:port`, numerically.
    var description: String { AddressResolution.describe(storage) }

    /// The port, in host order.
    var port: UInt16 {
        withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self)) }
    }
}

/// One UDP socket, non-blocking; the owner waits for it with poll(2).
final class DatagramSocket {
    /// -1 once closed.
    private(set) var descriptor: Int32
    /// The address it is bound to (the kernel's port after binding port 0).
    private(set) var local: SocketAddress

    private init(descriptor: Int32, local: SocketAddress) {
        self.descriptor = descriptor
        self.local = local
    }

    deinit { close() }

    /// Releases the address now. The owner makes sure no other thread uses the socket any more.
    func close() {
        guard descriptor >= 0 else { return }
        Glibc.close(descriptor)
        descriptor = -1
    }

    /// A socket bound to `address`. It may be an address this machine does not have yet
    /// (IP_FREEBIND): a path whose interface comes up later starts working then.
    static func bound(to address: NetworkAddress) throws -> DatagramSocket {
        var lastError = DatagramSocketError.unresolvable(host: address.host, reason: "no address")
        for candidate in try SocketAddress.resolve(address, passive: true) {
            let fd = socket(candidate.family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { lastError = .last("socket"); continue }
            var yes: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_IP), IP_FREEBIND, &yes, socklen_t(MemoryLayout<Int32>.size))
            guard candidate.withPointer({ bind(fd, $0, $1) }) == 0 else {
                lastError = .system(call: "bind \(address)", errno: errno)
                Glibc.close(fd)
                continue
            }
            let socket = DatagramSocket(descriptor: fd, local: candidate)
            socket.refreshLocal()
            return socket
        }
        throw lastError
    }

    /// An unbound socket for the family of `destination`, connected to it (a client's).
    static func connected(to destination: SocketAddress) throws -> DatagramSocket {
        let fd = socket(destination.family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw DatagramSocketError.last("socket") }
        let socket = DatagramSocket(descriptor: fd, local: destination)
        guard destination.withPointer({ connect(fd, $0, $1) }) == 0 else { throw DatagramSocketError.last("connect \(destination)") }
        socket.refreshLocal()
        return socket
    }

    private func refreshLocal() {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        if result == 0 { local = SocketAddress(storage: storage) }
    }

    /// Sends one datagram to `destination` (nil: the connected address).
    func send(_ bytes: [UInt8], to destination: SocketAddress?) throws {
        let sent = bytes.withUnsafeBytes { buffer -> Int in
            guard let destination else { return Glibc.send(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
            return destination.withPointer { sendto(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), $0, $1) }
        }
        guard sent >= 0 else { throw DatagramSocketError.last("sendto \(destination?.description ?? "witness")") }
    }

    /// The next waiting datagram, if any: its true size (larger than `buffer` when it was cut) and its source.
    func receive(into buffer: UnsafeMutableRawBufferPointer) -> (size: Int, source: SocketAddress)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        while true {
            let size = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_TRUNC), $0, &length)
                }
            }
            if size >= 0 { return (size, SocketAddress(storage: storage)) }
            // EAGAIN: nothing left; ECONNREFUSED and the like: an ICMP error of an earlier send.
            if errno == EINTR || errno == ECONNREFUSED { continue }
            return nil
        }
    }
}

/// Wakes a thread blocked in poll(2): a pipe whose read end it polls.
final class Wakeup {
    let descriptor: Int32
    private let writer: Int32

    init() throws {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw DatagramSocketError.last("pipe") }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
        }
        descriptor = ends[0]
        writer = ends[1]
    }

    deinit {
        Glibc.close(descriptor)
        Glibc.close(writer)
    }

    func signal() {
        var one: UInt8 = 1
        _ = write(writer, &one, 1)
    }
}

/// The timeout argument of poll(2).
enum PollTimeout {
    /// Milliseconds until `deadline`, rounded up, at most a minute; -1 for no deadline.
    static func until(_ deadline: ContinuousClock.Instant?) -> Int32 {
        guard let deadline else { return -1 }
        let remaining = deadline - .now
        guard remaining > .zero else { return 0 }
        return Int32(min(60_000, (remaining / .milliseconds(1)).rounded(.up)))
    }
}
