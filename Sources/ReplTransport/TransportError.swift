import Glibc
import ReplProtocol

/// Why a replication connection could not be made or did not last; each reads as one log line.
public enum TransportError: Error, Equatable, CustomStringConvertible {
    /// A system call failed with `errno`.
    case system(call: String, errno: Int32)
    /// The host name did not resolve to an address.
    case unresolvable(host: String, reason: String)
    /// One side refused the handshake (wrong key, cluster, node, version...).
    case refused(Refusal)
    /// The peer sent bytes that are not a valid, authenticated frame stream.
    case protocolViolation(ProtocolError)
    /// The peer sent a well-formed message that has no place at this point of the stream.
    case unexpectedMessage(MessageType)
    /// The peer closed the connection before the handshake ended.
    case closedDuringHandshake
    /// Nothing arrived from the peer in time.
    case timedOut(String)

    public var description: String {
        switch self {
        case .system(let call, let code):
            return "\(call): \(String(cString: strerror(code))) (errno \(code))"
        case .unresolvable(let host, let reason):
            return "cannot resolve '\(host)': \(reason)"
        case .refused(let refusal):
            return refusal.description
        case .protocolViolation(let error):
            return "protocol violation: \(error)"
        case .unexpectedMessage(let type):
            return "protocol violation: unexpected \(type) message"
        case .closedDuringHandshake:
            return "the peer closed the connection during the handshake"
        case .timedOut(let what):
            return "timed out: \(what)"
        }
    }

    /// `errno` of the calling thread, as the failure of `call`.
    static func lastSystemError(_ call: String) -> TransportError {
        .system(call: call, errno: errno)
    }
}
