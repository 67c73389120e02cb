import Glibc

/// An IPv4 address, kept as its four bytes in network order.
public struct IPv4Address: Hashable, Sendable, CustomStringConvertible {
    public var bytes: (UInt8, UInt8, UInt8, UInt8)

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) { bytes = (a, b, c, d) }

    /// Parses a dotted quad (`10.77.0.100`); nil for anything else (no names, no shorthand forms).
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var values: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.utf8.count), part.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                  let value = UInt8(part) else { return nil }
            values.append(value)
        }
        bytes = (values[0], values[1], values[2], values[3])
    }

    init(array: [UInt8]) {
        precondition(array.count == 4)
        bytes = (array[0], array[1], array[2], array[3])
    }

    public var array: [UInt8] { [bytes.0, bytes.1, bytes.2, bytes.3] }

    /// 0.0.0.0, the sender address of an ARP probe.
    public static let unspecified = IPv4Address(0, 0, 0, 0)

    public var description: String { "\(bytes.0).\(bytes.1).\(bytes.2).\(bytes.3)" }

    public static func == (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.array == rhs.array }
    public func hash(into hasher: inout Hasher) { hasher.combine(array) }
}

/// An Ethernet (EUI-48) hardware address.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 6 else { return nil }
        self.bytes = bytes
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (case-insensitive).
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var values: [UInt8] = []
        for part in parts {
            guard part.utf8.count == 2, let value = UInt8(part, radix: 16) else { return nil }
            values.append(value)
        }
        bytes = values
    }

    public static let broadcast = MACAddress(bytes: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])!
    public static let zero = MACAddress(bytes: [0, 0, 0, 0, 0, 0])!

    public var description: String {
        bytes.map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined(separator: ":")
    }
}

/// A virtual IP as the daemon handles it: an IPv4 address with its prefix length, on one interface.
public struct VirtualAddress: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4Address
    /// 0...32.
    public var prefixLength: Int
    /// The interface that carries it, e.g. `eth0`.
    public var interface: String

    public init(address: IPv4Address, prefixLength: Int, interface: String) throws {
        guard (0...32).contains(prefixLength) else {
            throw VirtualIPError.invalidAddress("\(address)/\(prefixLength)", reason: "the prefix length must be 0 to 32")
        }
        guard Self.isValidInterfaceName(interface) else {
            throw VirtualIPError.invalidInterfaceName(interface)
        }
        self.address = address
        self.prefixLength = prefixLength
        self.interface = interface
    }

    /// Parses `ADDRESS/PREFIX` (IPv4); a missing prefix means /32.
    public init(cidr: String, interface: String) throws {
        let parts = cidr.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else {
            throw VirtualIPError.invalidAddress(cidr, reason: "expected ADDRESS/PREFIX, e.g. 10.77.0.100/24")
        }
        guard let address = IPv4Address(String(parts[0])) else {
            let reason = parts[0].contains(":") ? "IPv6 virtual IPs are not supported yet (no neighbour advertisement)"
                                                : "not an IPv4 address in dotted-quad form"
            throw VirtualIPError.invalidAddress(cidr, reason: reason)
        }
        var prefixLength = 32
        if parts.count == 2 {
            guard (1...2).contains(parts[1].utf8.count), parts[1].utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                  let value = Int(parts[1]) else {
                throw VirtualIPError.invalidAddress(cidr, reason: "the prefix length must be 0 to 32")
            }
            prefixLength = value
        }
        try self.init(address: address, prefixLength: prefixLength, interface: interface)
    }

    /// `10.77.0.100/24`.
    public var cidr: String { "\(address)/\(prefixLength)" }

    /// `10.77.0.100/24 on veth-am`.
    public var description: String { "\(cidr) on \(interface)" }

    /// Linux interface names: 1 to 15 bytes, no `/`, `:` or white space, not `.` or `..`.
    static func isValidInterfaceName(_ name: String) -> Bool {
        guard (1...15).contains(name.utf8.count), name != ".", name != ".." else { return false }
        return !name.utf8.contains { $0 == 47 || $0 == 58 || $0 <= 32 || $0 == 127 }
    }
}
