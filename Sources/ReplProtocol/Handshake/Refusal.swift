/// Why a handshake was refused; the code travels in the `refuse` message.
public enum RefusalReason: UInt16, Sendable, CustomStringConvertible {
    case wrongCluster = 1
    case unknownNode = 2
    case wrongVersion = 3
    case wrongKey = 4
    case malformedMessage = 5
    case unexpectedMessage = 6
    case moduleMismatch = 7

    public var description: String {
        switch self {
        case .wrongCluster: return "wrong cluster"
        case .unknownNode: return "unknown node"
        case .wrongVersion: return "wrong protocol version"
        case .wrongKey: return "wrong key"
        case .malformedMessage: return "malformed message"
        case .unexpectedMessage: return "unexpected message"
        case .moduleMismatch: return "module lists differ"
        }
    }
}

/// How a handshake ended without a session: the reason, the details, and which side refused.
public struct Refusal: Equatable, Sendable, CustomStringConvertible {
    public let reason: RefusalReason
    public let detail: String
    /// `true` if the peer refused us; `false` if we refused the peer.
    public let byPeer: Bool

    init(reason: RefusalReason, detail: String, byPeer: Bool) {
        self.reason = reason
        self.detail = detail
        self.byPeer = byPeer
    }

    public var description: String {
        "\(byPeer ? "refused by the peer" : "refused the peer"): \(reason): \(detail)"
    }
}
