import Glibc

// rtnetlink, written by hand: Swift's Glibc module does not import <linux/netlink.h> or
// <linux/rtnetlink.h>, and the few structures involved are a stable kernel ABI (host byte order,
// 4-byte alignment). The constants below are those of the uapi headers.
enum NL {
    static let familyNetlink: Int32 = 16  // AF_NETLINK
    static let route: Int32 = 0  // NETLINK_ROUTE
    static let solNetlink: Int32 = 270  // SOL_NETLINK
    static let capAck: Int32 = 10  // NETLINK_CAP_ACK
    static let extAck: Int32 = 11  // NETLINK_EXT_ACK

    static let headerSize = 16  // struct nlmsghdr
    static let error: UInt16 = 2  // NLMSG_ERROR
    static let done: UInt16 = 3  // NLMSG_DONE

    static let request: UInt16 = 0x1  // NLM_F_REQUEST
    static let ack: UInt16 = 0x4  // NLM_F_ACK
    static let dump: UInt16 = 0x300  // NLM_F_ROOT | NLM_F_MATCH
    static let excl: UInt16 = 0x200  // NLM_F_EXCL
    static let create: UInt16 = 0x400  // NLM_F_CREATE
    static let capped: UInt16 = 0x100  // NLM_F_CAPPED, on an error message
    static let ackTLVs: UInt16 = 0x200  // NLM_F_ACK_TLVS, on an error message
    static let errorAttributeMessage: UInt16 = 1  // NLMSGERR_ATTR_MSG

    static let newLink: UInt16 = 16, getLink: UInt16 = 18  // RTM_NEWLINK, RTM_GETLINK
    static let newAddress: UInt16 = 20, deleteAddress: UInt16 = 21, getAddress: UInt16 = 22  // RTM_*ADDR

    static let linkAddress: UInt16 = 1, linkName: UInt16 = 3  // IFLA_ADDRESS, IFLA_IFNAME
    static let addressAddress: UInt16 = 1, addressLocal: UInt16 = 2, addressLabel: UInt16 = 3  // IFA_*
}

/// Bytes of a netlink message under construction (host byte order).
struct NetlinkWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { withUnsafeBytes(of: value) { bytes += $0 } }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value) { bytes += $0 } }
    mutating func i32(_ value: Int32) { withUnsafeBytes(of: value) { bytes += $0 } }

    /// A route attribute: length, type, payload, padded to 4 bytes.
    mutating func attribute(_ type: UInt16, _ payload: [UInt8]) {
        u16(UInt16(4 + payload.count))
        u16(type)
        bytes += payload
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    /// A complete message: header, then `body`.
    static func message(type: UInt16, flags: UInt16, sequence: UInt32, body: [UInt8]) -> [UInt8] {
        var writer = NetlinkWriter()
        writer.u32(UInt32(NL.headerSize + body.count))
        writer.u16(type)
        writer.u16(flags)
        writer.u32(sequence)
        writer.u32(0)  // the kernel fills in our port id where it needs one
        writer.bytes += body
        return writer.bytes
    }
}

/// Reads host-order integers and route attributes out of a received buffer.
struct NetlinkReader {
    let bytes: ArraySlice<UInt8>

    func u8(_ offset: Int) -> UInt8 { bytes[bytes.startIndex + offset] }

    func u16(_ offset: Int) -> UInt16 {
        var value: UInt16 = 0
        withUnsafeMutableBytes(of: &value) { raw in
            for i in 0..<2 { raw[i] = bytes[bytes.startIndex + offset + i] }
        }
        return value
    }

    func u32(_ offset: Int) -> UInt32 {
        var value: UInt32 = 0
        withUnsafeMutableBytes(of: &value) { raw in
            for i in 0..<4 { raw[i] = bytes[bytes.startIndex + offset + i] }
        }
        return value
    }

    func i32(_ offset: Int) -> Int32 { Int32(bitPattern: u32(offset)) }

    /// The route attributes from `offset` on (type → payload; the first of each type wins).
    func attributes(from offset: Int) -> [UInt16: [UInt8]] {
        var result: [UInt16: [UInt8]] = [:]
        var position = offset
        while position + 4 <= bytes.count {
            let length = Int(u16(position))
            let type = u16(position + 2) & 0x3fff  // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
            guard length >= 4, position + length <= bytes.count else { break }
            if result[type] == nil {
                result[type] = Array(bytes[(bytes.startIndex + position + 4)..<(bytes.startIndex + position + length)])
            }
            position += (length + 3) & ~3
        }
        return result
    }
}

/// A message the kernel sent back (header type and flags, and what follows the header).
struct NetlinkMessage {
    let type: UInt16
    let flags: UInt16
    let payload: ArraySlice<UInt8>
}

/// The kernel's refusal of a request: an errno, and the extended-ack text when it gave one.
struct NetlinkFailure: Error {
    let code: Int32
    let message: String?
}

/// A NETLINK_ROUTE socket for one request at a time, in the calling thread's network namespace.
final class RouteNetlinkSocket {
    private let fd: Int32
    private var sequence: UInt32

    /// Opens and binds the socket; the errno on failure.
    init() throws {
        let fd = socket(NL.familyNetlink, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NL.route)
        guard fd >= 0 else { throw NetlinkFailure(code: errno, message: "socket(AF_NETLINK, NETLINK_ROUTE)") }
        var on: Int32 = 1
        // Extended acks carry the kernel's own explanation ("prefix length must be..."); capped acks
        // leave out the echo of our request. Both are best effort (old kernels ignore them).
        _ = setsockopt(fd, NL.solNetlink, NL.extAck, &on, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, NL.solNetlink, NL.capAck, &on, socklen_t(MemoryLayout<Int32>.size))
        // Never wait forever for the kernel.
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = [UInt8](repeating: 0, count: 12)  // struct sockaddr_nl, port id 0: the kernel picks one
        address[0] = UInt8(NL.familyNetlink)
        let bound = address.withUnsafeBytes { raw in
            bind(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw NetlinkFailure(code: code, message: "bind(AF_NETLINK)")
        }
        self.fd = fd
        sequence = UInt32(truncatingIfNeeded: time(nil))
    }

    deinit { close(fd) }

    /// Sends one request and collects the kernel's answer: the messages of a dump (until
    /// NLMSG_DONE), or the reply of a request sent with NLM_F_ACK (until its acknowledgement).
    func exchange(type: UInt16, flags: UInt16, body: [UInt8]) throws -> [NetlinkMessage] {
        sequence &+= 1
        let mySequence = sequence
        let message = NetlinkWriter.message(type: type, flags: flags, sequence: mySequence, body: body)
        var kernel = [UInt8](repeating: 0, count: 12)
        kernel[0] = UInt8(NL.familyNetlink)
        let sent = message.withUnsafeBytes { raw in
            kernel.withUnsafeBytes { to in
                sendto(fd, raw.baseAddress, raw.count, 0, to.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(to.count))
            }
        }
        guard sent == message.count else { throw NetlinkFailure(code: sent < 0 ? errno : EIO, message: nil) }

        var collected: [NetlinkMessage] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let received = recv(fd, &buffer, buffer.count, 0)
            if received < 0 {
                if errno == EINTR { continue }
                throw NetlinkFailure(code: errno == EAGAIN ? ETIMEDOUT : errno, message: "no answer from the kernel")
            }
            var offset = 0
            while offset + NL.headerSize <= received {
                let header = NetlinkReader(bytes: buffer[offset..<received])
                let length = Int(header.u32(0))
                guard length >= NL.headerSize, offset + length <= received else { break }
                let messageType = header.u16(4), messageFlags = header.u16(6), messageSequence = header.u32(8)
                let payload = buffer[(offset + NL.headerSize)..<(offset + length)]
                offset += (length + 3) & ~3
                guard messageSequence == mySequence else { continue }  // a late answer to an earlier request
                switch messageType {
                case NL.error:
                    let reader = NetlinkReader(bytes: payload)
                    guard payload.count >= 4 else { throw NetlinkFailure(code: EIO, message: "short netlink error") }
                    let code = -reader.i32(0)
                    if code == 0 { return collected }  // the acknowledgement
                    throw NetlinkFailure(code: code, message: Self.extendedAckMessage(reader, flags: messageFlags))
                case NL.done:
                    let code = payload.count >= 4 ? -NetlinkReader(bytes: payload).i32(0) : 0
                    if code > 0 { throw NetlinkFailure(code: code, message: nil) }
                    return collected
                default:
                    collected.append(NetlinkMessage(type: messageType, flags: messageFlags, payload: payload))
                }
            }
        }
    }

    /// The NLMSGERR_ATTR_MSG text of an error message, when the kernel attached one.
    private static func extendedAckMessage(_ reader: NetlinkReader, flags: UInt16) -> String? {
        guard flags & NL.ackTLVs != 0, reader.bytes.count >= 4 + NL.headerSize else { return nil }
        // After the errno comes our request's header (capped) or whole request, then the attributes.
        let echoed = flags & NL.capped != 0 ? NL.headerSize : Int(reader.u32(4))
        let start = 4 + ((echoed + 3) & ~3)
        guard start <= reader.bytes.count, let text = reader.attributes(from: start)[NL.errorAttributeMessage] else { return nil }
        let message = String(decoding: text.prefix { $0 != 0 }, as: UTF8.self)
        return message.isEmpty ? nil : message
    }
}
