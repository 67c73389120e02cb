import Glibc

/// What the kernel says about one network interface.
public struct InterfaceInfo: Equatable, Sendable {
    public let name: String
    public let index: Int32
    /// ARPHRD_* (1 for Ethernet, veth and bridges; 772 for loopback).
    public let hardwareType: UInt16
    /// IFF_* flags.
    public let flags: UInt32
    /// The hardware address, when the link has a 6-byte one.
    public let macAddress: MACAddress?

    public var isUp: Bool { flags & 0x1 != 0 }  // IFF_UP
    /// Whether the link resolves IPv4 neighbours with ARP: Ethernet-like and not IFF_NOARP.
    public var usesARP: Bool { hardwareType == 1 && flags & 0x80 == 0 && macAddress != nil }  // ARPHRD_ETHER, IFF_NOARP
}

/// One IPv4 address assigned on this host (`ip -4 addr`).
public struct AssignedAddress: Equatable, Sendable, CustomStringConvertible {
    public let address: IPv4Address
    public let prefixLength: Int
    public let interfaceIndex: Int32
    /// The address's label: the interface name, or an alias such as `eth0:1`.
    public let label: String

    public var description: String { "\(address)/\(prefixLength) on \(label)" }
}

/// The few rtnetlink requests the manager needs.
enum RouteNetlink {
    /// RTM_GETLINK by name; nil when no such interface exists.
    static func link(named name: String, on socket: RouteNetlinkSocket) throws -> InterfaceInfo? {
        var body = NetlinkWriter()
        body.u8(UInt8(AF_UNSPEC)); body.u8(0); body.u16(0); body.i32(0); body.u32(0); body.u32(0)  // ifinfomsg
        body.attribute(NL.linkName, Array(name.utf8) + [0])
        let replies: [NetlinkMessage]
        do {
            replies = try socket.exchange(type: NL.getLink, flags: NL.request | NL.ack, body: body.bytes)
        } catch let failure as NetlinkFailure where failure.code == ENODEV {
            return nil
        }
        guard let reply = replies.first(where: { $0.type == NL.newLink }), reply.payload.count >= 16 else { return nil }
        let reader = NetlinkReader(bytes: reply.payload)
        let attributes = reader.attributes(from: 16)
        let reportedName = attributes[NL.linkName].map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } ?? name
        return InterfaceInfo(
            name: reportedName, index: reader.i32(4), hardwareType: reader.u16(2), flags: reader.u32(8),
            macAddress: attributes[NL.linkAddress].flatMap { MACAddress(bytes: $0) })
    }

    /// RTM_GETADDR dump of every IPv4 address of the namespace.
    static func addresses(on socket: RouteNetlinkSocket) throws -> [AssignedAddress] {
        var body = NetlinkWriter()
        body.u8(UInt8(AF_INET)); body.u8(0); body.u8(0); body.u8(0); body.u32(0)  // ifaddrmsg
        let replies = try socket.exchange(type: NL.getAddress, flags: NL.request | NL.dump, body: body.bytes)
        return replies.compactMap { reply in
            guard reply.type == NL.newAddress, reply.payload.count >= 8 else { return nil }
            let reader = NetlinkReader(bytes: reply.payload)
            guard reader.u8(0) == UInt8(AF_INET) else { return nil }
            let attributes = reader.attributes(from: 8)
            guard let local = attributes[NL.addressLocal] ?? attributes[NL.addressAddress], local.count == 4 else { return nil }
            let label = attributes[NL.addressLabel].map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } ?? ""
            return AssignedAddress(address: IPv4Address(array: local), prefixLength: Int(reader.u8(1)),
                                   interfaceIndex: Int32(bitPattern: reader.u32(4)), label: label)
        }
    }

    /// RTM_NEWADDR (create, exclusive) or RTM_DELADDR of `address/prefixLength` on interface `index`.
    static func change(adding: Bool, _ address: IPv4Address, prefixLength: Int, index: Int32,
                       on socket: RouteNetlinkSocket) throws {
        var body = NetlinkWriter()
        body.u8(UInt8(AF_INET)); body.u8(UInt8(prefixLength)); body.u8(0); body.u8(0)  // flags, RT_SCOPE_UNIVERSE
        body.u32(UInt32(bitPattern: index))
        body.attribute(NL.addressLocal, address.array)
        // IFA_ADDRESS too: on deletion it makes the kernel match the prefix length as well, so only
        // this exact entry goes, never the same address added by someone else with another prefix.
        body.attribute(NL.addressAddress, address.array)
        let flags = adding ? NL.request | NL.ack | NL.create | NL.excl : NL.request | NL.ack
        _ = try socket.exchange(type: adding ? NL.newAddress : NL.deleteAddress, flags: flags, body: body.bytes)
    }
}
