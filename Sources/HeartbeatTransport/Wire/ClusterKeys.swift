import Crypto

/// Keys derived from the cluster's pre-shared key, one per protocol, so that a message of one
/// protocol never authenticates as another's (the replication handshake uses the key itself,
/// with its own labels).
///
/// Each is HMAC-SHA256(key: pre-shared key, message: label).
public enum ClusterKeys {
    public static let heartbeatLabel = "mirror heartbeat v1"
    public static let witnessLabel = "mirror witness v1"

    public static func heartbeat(presharedKey: [UInt8]) -> SymmetricKey {
        derive(presharedKey: presharedKey, label: heartbeatLabel)
    }

    public static func witness(presharedKey: [UInt8]) -> SymmetricKey {
        derive(presharedKey: presharedKey, label: witnessLabel)
    }

    static func derive(presharedKey: [UInt8], label: String) -> SymmetricKey {
        let code = HMAC<SHA256>.authenticationCode(for: Array(label.utf8), using: SymmetricKey(data: presharedKey))
        return SymmetricKey(data: Array(code))
    }
}

/// The HMAC-SHA256 tag that ends every datagram of both protocols, over every byte before it.
enum DatagramTag {
    static let size = 32

    static func append(to writer: inout WireWriter, key: SymmetricKey) {
        let tag = HMAC<SHA256>.authenticationCode(for: writer.bytes, using: key)
        writer.append(raw: Array(tag))
    }

    /// Whether the last 32 bytes of `datagram` authenticate the bytes before them (constant time).
    static func isValid(_ datagram: ArraySlice<UInt8>, key: SymmetricKey) -> Bool {
        guard datagram.count >= size else { return false }
        let split = datagram.endIndex - size
        return HMAC<SHA256>.isValidAuthenticationCode(datagram[split...], authenticating: datagram[..<split], using: key)
    }
}
