import Glibc

/// Name resolution and the text form of socket addresses, for the few places that need them
/// (the replication's TCP sockets, the heartbeats' UDP sockets).
public enum AddressResolution {
    /// Every address of `address` for sockets of `type` (stream by default), in the order
    /// getaddrinfo(3) prefers.
    /// - Parameter passive: for bind(2) rather than connect(2).
    /// - Throws: ``TransportError/unresolvable(host:reason:)``.
    public static func resolve(_ address: NetworkAddress, passive: Bool,
                               type: __socket_type = SOCK_STREAM) throws -> [sockaddr_storage] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(type.rawValue)
        hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)
        var list: UnsafeMutablePointer<addrinfo>?
        let result = getaddrinfo(address.host, String(address.port), &hints, &list)
        guard result == 0 else {
            throw TransportError.unresolvable(host: address.host, reason: String(cString: gai_strerror(result)))
        }
        defer { freeaddrinfo(list) }
        var addresses: [sockaddr_storage] = []
        var entry = list
        while let current = entry {
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { target in
                target.copyMemory(from: UnsafeRawBufferPointer(start: current.pointee.ai_addr,
                                                               count: Int(current.pointee.ai_addrlen)))
            }
            addresses.append(storage)
            entry = current.pointee.ai_next
        }
        return addresses
    }

    /// `host:port` of a socket address, numerically (no name lookup).
    public static func describe(_ storage: sockaddr_storage) -> String {
        let length = length(of: storage)
        var storage = storage
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), &service, socklen_t(service.count),
                            NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard result == 0 else { return "(unknown address)" }
        let address = String(cString: host)
        return address.contains(":") ? "[\(address)]:\(String(cString: service))" : "\(address):\(String(cString: service))"
    }

    /// The size of the address in `storage`, by its family.
    public static func length(of storage: sockaddr_storage) -> socklen_t {
        socklen_t(Int32(storage.ss_family) == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
    }
}
