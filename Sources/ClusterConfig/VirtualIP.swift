/// An address that follows the module: added on `interface` where the module serves, removed elsewhere.
public struct VirtualIP: Equatable, Sendable, CustomStringConvertible {
    /// The address without its prefix length, as written (IPv4 dotted quad or IPv6).
    public var address: String
    /// The network prefix length: 0...32 for IPv4, 0...128 for IPv6.
    public var prefixLength: Int
    /// The network interface that carries the address, e.g. `eth0`.
    public var interface: String

    /// `address/prefix on interface`.
    public var description: String { "\(address)/\(prefixLength) on \(interface)" }

    /// Splits `ADDRESS/PREFIX`; nil when either part is malformed or the prefix does not fit the address family.
    static func parseCIDR(_ text: String) -> (address: String, prefixLength: Int)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].allSatisfy(\.isASCIIDigit), let prefixLength = Int(parts[1]) else { return nil }
        let address = String(parts[0])
        let fits = IPAddress.isIPv4(address) ? prefixLength <= 32 : IPAddress.isIPv6(address) && prefixLength <= 128
        return fits ? (address, prefixLength) : nil
    }
}
