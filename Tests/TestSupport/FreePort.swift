import Glibc

/// A port nobody uses now at `host` (IPv4) for sockets of `type` (TCP by default): bound to port
/// 0, read back, closed. Good enough for a test that binds it right after.
public func freePort(on host: String, type: __socket_type = SOCK_STREAM) throws -> UInt16 {
    let fd = socket(AF_INET, Int32(type.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    inet_pton(AF_INET, host, &address.sin_addr)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Bool in
            bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
        }
    }
    guard bound else { throw TestFailure("bind \(host): \(String(cString: strerror(errno)))") }
    return UInt16(bigEndian: address.sin_port)
}
