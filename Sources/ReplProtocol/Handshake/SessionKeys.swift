import Crypto
import Foundation

/// The two keys of an established session: one authenticates what this node sends, the other
/// what it receives.
///
/// Give `sending` to ``FrameEncoder/init(sendingKey:)`` and `receiving` to
/// ``FrameDecoder/requireAuthentication(with:)``.
public struct SessionKeys {
    public let sending: SymmetricKey
    public let receiving: SymmetricKey

    /// HKDF-SHA256 of the pre-shared key, salted with both nonces (initiator's first) and bound
    /// to the handshake transcript, with one label per direction.
    static func derive(preSharedKey: SymmetricKey, transcript: HandshakeTranscript, isInitiator: Bool) -> SessionKeys {
        let salt = transcript.initiatorNonce.bytes + transcript.responderNonce.bytes
        let transcriptDigest = Array(SHA256.hash(data: transcript.bytes))
        func key(_ direction: String) -> SymmetricKey {
            HKDF<SHA256>.deriveKey(inputKeyMaterial: preSharedKey, salt: salt,
                                   info: Array("mirror session v1 \(direction)".utf8) + transcriptDigest,
                                   outputByteCount: 32)
        }
        let initiatorToResponder = key("initiator to responder")
        let responderToInitiator = key("responder to initiator")
        return isInitiator
            ? SessionKeys(sending: initiatorToResponder, receiving: responderToInitiator)
            : SessionKeys(sending: responderToInitiator, receiving: initiatorToResponder)
    }
}
