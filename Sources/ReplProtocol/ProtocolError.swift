/// Everything that can be wrong with bytes received from the peer; each reads as one log line.
///
/// Decoding stops at the first error: the stream can no longer be trusted or resynchronised, so
/// the caller logs ``description`` and closes the connection.
public enum ProtocolError: Error, Equatable, CustomStringConvertible {
    case badMagic(UInt32)
    case unsupportedVersion(received: UInt8, supported: UInt8)
    case unknownMessageType(UInt8)
    case unknownFlags(UInt16)
    case frameTooLarge(length: Int, limit: Int)
    case truncatedFrame(received: Int, expected: Int)
    case truncatedField(String, in: MessageType)
    case fieldTooLong(String, length: Int, limit: Int, in: MessageType)
    case invalidField(String, reason: String, in: MessageType)
    case trailingBytes(Int, in: MessageType)
    case missingIntegrityTag(sequence: UInt64)
    case unexpectedIntegrityTag(sequence: UInt64)
    case badIntegrityTag(sequence: UInt64)
    case sequenceOutOfOrder(received: UInt64, expected: UInt64)

    public var description: String {
        switch self {
        case .badMagic(let magic):
            return "bad magic 0x\(String(magic, radix: 16)): not a mirror replication stream"
        case .unsupportedVersion(let received, let supported):
            return "unsupported protocol version \(received) (we speak \(supported))"
        case .unknownMessageType(let code):
            return "unknown message type \(code)"
        case .unknownFlags(let flags):
            return "unknown frame flags 0x\(String(flags, radix: 16))"
        case .frameTooLarge(let length, let limit):
            return "frame of \(length) bytes exceeds the limit of \(limit) bytes"
        case .truncatedFrame(let received, let expected):
            return "stream ended inside a frame: \(received) of \(expected) bytes received"
        case .truncatedField(let field, let type):
            return "truncated field '\(field)' in \(type) message"
        case .fieldTooLong(let field, let length, let limit, let type):
            return "field '\(field)' of \(length) bytes in \(type) message exceeds the limit of \(limit) bytes"
        case .invalidField(let field, let reason, let type):
            return "invalid field '\(field)' in \(type) message: \(reason)"
        case .trailingBytes(let count, let type):
            return "\(count) unexpected bytes after the end of a \(type) message"
        case .missingIntegrityTag(let sequence):
            return "frame \(sequence) has no integrity tag, but the session requires one"
        case .unexpectedIntegrityTag(let sequence):
            return "frame \(sequence) has an integrity tag before the handshake established a key"
        case .badIntegrityTag(let sequence):
            return "bad integrity tag on frame \(sequence): corrupted or forged"
        case .sequenceOutOfOrder(let received, let expected):
            return "frame sequence \(received) out of order (expected \(expected)): replayed, reordered or lost"
        }
    }
}
