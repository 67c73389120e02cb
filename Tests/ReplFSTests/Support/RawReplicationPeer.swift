import Foundation
import Glibc
@testable import ReplProtocol
import TestSupport

/// A hand-driven TCP connection to a node's replication port, as a broken or hostile peer would
/// make it: raw bytes, or ReplProtocol's real handshake (as node1) followed by frames of any kind,
/// tagged with the session key or not.
final class RawReplicationPeer {
    let fd: Int32
    /// This end's "host:port", as the node's log lines name the remote address.
    let localAddress: String
    /// After ``handshake(_:)``: the session keys, an encoder for the session's frames and a
    /// decoder of the node's answers.
    private(set) var keys: SessionKeys?
    var encoder = FrameEncoder()
    private var decoder = FrameDecoder()

    init(host: String, port: UInt16) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw TestFailure("connect to \(host):\(port): \(String(cString: strerror(code)))")
        }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &local.sin_addr, &text, socklen_t(text.count))
        localAddress = "\(String(cString: text)):\(UInt16(bigEndian: local.sin_port))"
        self.fd = fd
    }

    deinit { close(fd) }

    /// Sends everything it can; a peer that already closed is not an error here.
    func send(_ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            sent += n
        }
    }

    /// Closes the sending side: the node sees the end of the stream.
    func finishSending() { _ = shutdown(fd, Int32(SHUT_WR)) }

    /// Waits up to `timeout` for bytes; nil once the node closed the connection (end of stream
    /// or reset), [] on timeout.
    func receive(timeout: TimeInterval) -> [UInt8]? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(timeout * 1000)) > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
        return n > 0 ? Array(buffer[..<n]) : nil
    }

    /// Reads until the node closes the connection; false if it still had not after `timeout`.
    func waitUntilClosed(timeout: TimeInterval = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard let bytes = receive(timeout: deadline.timeIntervalSinceNow) else { return true }
            if bytes.isEmpty { return false }
            decoder.feed(bytes)
        }
        return false
    }

    /// The handshake, as the initiator with `configuration`; afterwards ``encoder`` makes the
    /// session's authenticated frames.
    func handshake(_ configuration: HandshakeConfiguration) throws {
        var (handshake, hello) = Handshake.initiator(configuration: configuration, nonce: .random())
        send(hello)
        while true {
            switch handshake.state {
            case .established(let sessionKeys):
                keys = sessionKeys
                encoder = FrameEncoder(sendingKey: sessionKeys.sending)
                decoder.requireAuthentication(with: sessionKeys.receiving)
                return
            case .refused(let refusal):
                throw TestFailure("handshake refused: \(refusal)")
            case .inProgress:
                break
            }
            if let frame = try decoder.nextFrame() {
                send(handshake.receive(frame))
                continue
            }
            guard let bytes = receive(timeout: 5), !bytes.isEmpty else { throw TestFailure("the node closed or went silent during the handshake") }
            decoder.feed(bytes)
        }
    }

    /// The node's answers (acks, nacks, pongs) until `count` arrived or `timeout` passed.
    func answers(_ count: Int, timeout: TimeInterval = 5) throws -> [Message] {
        var messages: [Message] = []
        let deadline = Date().addingTimeInterval(timeout)
        while messages.count < count {
            while let frame = try decoder.nextFrame() { messages.append(try Message(decoding: frame)) }
            guard messages.count < count, Date() < deadline, let bytes = receive(timeout: deadline.timeIntervalSinceNow), !bytes.isEmpty else { break }
            decoder.feed(bytes)
        }
        return messages
    }

    /// A frame the encoder would never make: any header fields, any payload, tagged with the
    /// session's sending key when `authenticated` (the tag is then valid whatever the payload).
    func rawFrame(type: UInt8, authenticated: Bool, length: UInt32? = nil, sequence: UInt64, payload: [UInt8]) -> [UInt8] {
        var writer = ByteWriter()
        writer.append(WireFormat.magic)
        writer.append(WireFormat.version)
        writer.append(type)
        writer.append(authenticated ? FrameFlags.authenticated.rawValue : 0)
        writer.append(length ?? UInt32(payload.count))
        writer.append(sequence)
        writer.append(raw: payload)
        if authenticated, let keys { writer.append(raw: FrameTag.compute(over: writer.bytes[...], key: keys.sending)) }
        return writer.bytes
    }
}
