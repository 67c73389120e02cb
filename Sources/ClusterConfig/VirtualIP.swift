import Glibc

/// An address that follows the module: added on `interface` where the module serves, removed elsewhere.
public struct VirtualIP: Equatable, Sendable, CustomStringConvertible {
    /// The address without its prefix length, as written (IPv4 dotted quad or IPv6).
    public var address: String
    /// The network prefix length: 0...32 for IPv4, 0...128 for IPv6.
    public var prefixLength: Int
    /// The network interface that carries the address, e.g. `eth0`.
    public var interface: String

    /// Whether `address` is an IPv6 address.
    public var isIPv6: Bool { address.contains(":") }

    /// `address/prefix on interface`.
    public var description: String { "\(address)/\(prefixLength) on \(interface)" }

    /// Parses `ADDRESS/PREFIX`; nil when either part is malformed or the prefix does not fit the address family.
    static func parse(cidr: String, interface: String) -> VirtualIP? {
        let parts = cidr.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let prefix = Int(parts[1]), parts[1].allSatisfy(\.isASCIIDigit) else { return nil }
        let address = String(parts[0])
        if IPAddress.isIPv4(address), (0...32).contains(prefix) {
            return VirtualIP(address: address, prefixLength: prefix, interface: interface)
        }
        if IPAddress.isIPv6(address), (0...128).contains(prefix) {
            return VirtualIP(address: address, prefixLength: prefix, interface: interface)
        }
        return nil
    }
}

/// Syntax of IP address literals (no name resolution).
enum IPAddress {
    static func isIPv4(_ text: String) -> Bool {
        var storage = in_addr()
        return text.split(separator: ".", omittingEmptySubsequences: false).count == 4 && inet_pton(AF_INET, text, &storage) == 1
    }

    static func isIPv6(_ text: String) -> Bool {
        var storage = in6_addr()
        return inet_pton(AF_INET6, text, &storage) == 1
    }
}

/// Linux network interface names: 1 to 15 bytes, no slash, colon or white space, not `.` or `..`.
enum InterfaceName {
    static func isValid(_ name: String) -> Bool {
        guard (1...15).contains(name.utf8.count), name != ".", name != ".." else { return false }
        return !name.contains { $0 == "/" || $0 == ":" || $0.isWhitespace }
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
