import Crypto
import Foundation

/// Both hellos exactly as they travelled; the proofs and the session keys are bound to them, so
/// changing any field of either hello in transit makes the handshake fail.
struct HandshakeTranscript {
    let hello: Hello
    let helloReply: Hello
    /// Each hello's payload preceded by its length.
    let bytes: [UInt8]

    init(hello: Hello, helloPayload: ArraySlice<UInt8>, helloReply: Hello, helloReplyPayload: ArraySlice<UInt8>) {
        self.hello = hello
        self.helloReply = helloReply
        var writer = ByteWriter(reservingCapacity: helloPayload.count + helloReplyPayload.count + 8)
        writer.appendLongBytes(helloPayload)
        writer.appendLongBytes(helloReplyPayload)
        bytes = writer.bytes
    }

    var initiatorNonce: HandshakeNonce { hello.nonce }
    var responderNonce: HandshakeNonce { helloReply.nonce }

    /// HMAC-SHA256 with the pre-shared key over a label, the prover's role and the transcript.
    func proof(by role: HandshakeRole, key: SymmetricKey) -> Proof {
        Proof(code: Array(HMAC<SHA256>.authenticationCode(for: proofInput(role), using: key)))
    }

    /// Constant-time check of a proof received from the peer playing `role`.
    func isValid(_ proof: Proof, by role: HandshakeRole, key: SymmetricKey) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(proof.code, authenticating: proofInput(role), using: key)
    }

    private func proofInput(_ role: HandshakeRole) -> [UInt8] {
        Array("mirror proof v1 \(role)".utf8) + bytes
    }
}

/// Which end of the connection a node is: the one that connected, or the one that accepted.
public enum HandshakeRole: Sendable {
    case initiator
    case responder
}
