import Glibc

/// An ARP packet for IPv4 over Ethernet (RFC 826), as carried in an Ethernet frame.
struct ARPPacket: Equatable {
    static let request: UInt16 = 1, reply: UInt16 = 2
    static let etherType: UInt16 = 0x0806  // ETH_P_ARP
    /// Ethernet header (14) + ARP (28), padded to the 60-byte minimum frame (without FCS).
    static let frameLength = 60

    var operation: UInt16
    var senderMAC: MACAddress
    var senderIP: IPv4Address
    var targetMAC: MACAddress
    var targetIP: IPv4Address

    /// Gratuitous ARP request: "who has VIP? tell VIP", target hardware address zero.
    static func gratuitousRequest(_ address: IPv4Address, from mac: MACAddress) -> ARPPacket {
        ARPPacket(operation: request, senderMAC: mac, senderIP: address, targetMAC: .zero, targetIP: address)
    }

    /// Gratuitous ARP reply: "VIP is at MAC", target hardware address our own (Linux only counts
    /// a reply as gratuitous, and lets it override a recent entry, when sender and target match).
    static func gratuitousReply(_ address: IPv4Address, from mac: MACAddress) -> ARPPacket {
        ARPPacket(operation: reply, senderMAC: mac, senderIP: address, targetMAC: mac, targetIP: address)
    }

    /// ARP probe (RFC 5227): sender address 0.0.0.0, so that nobody's cache learns anything from it.
    static func probe(_ address: IPv4Address, from mac: MACAddress) -> ARPPacket {
        ARPPacket(operation: request, senderMAC: mac, senderIP: .unspecified, targetMAC: .zero, targetIP: address)
    }

    /// The whole Ethernet frame, broadcast unless told otherwise.
    func frame(to destination: MACAddress = .broadcast) -> [UInt8] {
        var bytes = destination.bytes + senderMAC.bytes + [UInt8(Self.etherType >> 8), UInt8(Self.etherType & 0xff)]
        bytes += [0, 1, 0x08, 0x00, 6, 4, UInt8(operation >> 8), UInt8(operation & 0xff)]  // Ethernet, IPv4, lengths
        bytes += senderMAC.bytes + senderIP.array + targetMAC.bytes + targetIP.array
        bytes += [UInt8](repeating: 0, count: Self.frameLength - bytes.count)
        return bytes
    }

    /// Parses an Ethernet frame; nil unless it is an IPv4-over-Ethernet ARP packet.
    init?(frame bytes: [UInt8]) {
        guard bytes.count >= 42, bytes[12] == 0x08, bytes[13] == 0x06,
              bytes[14] == 0, bytes[15] == 1, bytes[16] == 0x08, bytes[17] == 0, bytes[18] == 6, bytes[19] == 4
        else { return nil }
        operation = UInt16(bytes[20]) << 8 | UInt16(bytes[21])
        senderMAC = MACAddress(bytes: Array(bytes[22..<28]))!
        senderIP = IPv4Address(array: Array(bytes[28..<32]))
        targetMAC = MACAddress(bytes: Array(bytes[32..<38]))!
        targetIP = IPv4Address(array: Array(bytes[38..<42]))
    }

    init(operation: UInt16, senderMAC: MACAddress, senderIP: IPv4Address, targetMAC: MACAddress, targetIP: IPv4Address) {
        self.operation = operation
        self.senderMAC = senderMAC
        self.senderIP = senderIP
        self.targetMAC = targetMAC
        self.targetIP = targetIP
    }
}

/// An AF_PACKET raw socket bound to one interface, for ARP frames only (needs CAP_NET_RAW).
final class ARPSocket {
    private static let packetFamily: Int32 = 17  // AF_PACKET
    private static let outgoing: UInt8 = 4  // PACKET_OUTGOING: our own frames, looped back to us

    private let fd: Int32
    private let interfaceIndex: Int32

    /// Opens the socket; the errno of socket(2) or bind(2) on failure.
    init(interfaceIndex: Int32) throws {
        let protocolNumber = Int32(ARPPacket.etherType.bigEndian)
        let fd = socket(Self.packetFamily, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), protocolNumber)
        guard fd >= 0 else { throw PacketFailure(call: "socket(AF_PACKET)", code: errno) }
        var address = Self.linkAddress(interfaceIndex: interfaceIndex, destination: nil)
        let bound = address.withUnsafeMutableBytes { raw in
            bind(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw PacketFailure(call: "bind(AF_PACKET)", code: code)
        }
        self.fd = fd
        self.interfaceIndex = interfaceIndex
    }

    deinit { close(fd) }

    /// struct sockaddr_ll: family, protocol (network order), ifindex, hatype, pkttype, halen, addr[8].
    private static func linkAddress(interfaceIndex: Int32, destination: MACAddress?) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 20)
        withUnsafeBytes(of: UInt16(packetFamily)) { bytes.replaceSubrange(0..<2, with: $0) }
        withUnsafeBytes(of: ARPPacket.etherType.bigEndian) { bytes.replaceSubrange(2..<4, with: $0) }
        withUnsafeBytes(of: interfaceIndex) { bytes.replaceSubrange(4..<8, with: $0) }
        if let destination {
            bytes[11] = 6
            bytes.replaceSubrange(12..<18, with: destination.bytes)
        }
        return bytes
    }

    func send(_ packet: ARPPacket, to destination: MACAddress = .broadcast) throws {
        let frame = packet.frame(to: destination)
        var address = Self.linkAddress(interfaceIndex: interfaceIndex, destination: destination)
        let sent = frame.withUnsafeBytes { raw in
            address.withUnsafeMutableBytes { to in
                sendto(fd, raw.baseAddress, raw.count, 0, to.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(to.count))
            }
        }
        guard sent == frame.count else { throw PacketFailure(call: "sendto(AF_PACKET)", code: sent < 0 ? errno : EIO) }
    }

    /// The next ARP packet received on the interface from another host, or nil after `timeout` seconds.
    func receive(timeout: Double) throws -> ARPPacket? {
        let deadline = monotonicNow() + timeout
        var buffer = [UInt8](repeating: 0, count: 2048)
        while true {
            let remaining = deadline - monotonicNow()
            guard remaining > 0 else { return nil }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(max(1, (remaining * 1000).rounded(.up))))
            if ready < 0 {
                if errno == EINTR { continue }
                throw PacketFailure(call: "poll(AF_PACKET)", code: errno)
            }
            if ready == 0 { continue }
            var from = [UInt8](repeating: 0, count: 20)
            var fromLength = socklen_t(20)
            let received = buffer.withUnsafeMutableBytes { raw in
                from.withUnsafeMutableBytes { address in
                    recvfrom(fd, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), address.baseAddress!.assumingMemoryBound(to: sockaddr.self), &fromLength)
                }
            }
            if received < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw PacketFailure(call: "recvfrom(AF_PACKET)", code: errno)
            }
            var index: Int32 = 0
            withUnsafeMutableBytes(of: &index) { $0.copyBytes(from: from[4..<8]) }
            guard index == interfaceIndex, from[10] != Self.outgoing,
                  let packet = ARPPacket(frame: Array(buffer[0..<received])) else { continue }
            return packet
        }
    }
}

/// A packet socket call that failed, with its errno.
struct PacketFailure: Error {
    let call: String
    let code: Int32
}

/// Seconds on the monotonic clock.
func monotonicNow() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Sleeps `seconds`, resuming after signals.
func sleepSeconds(_ seconds: Double) {
    guard seconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}
