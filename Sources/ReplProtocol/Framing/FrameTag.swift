import Crypto
import Foundation

/// The HMAC-SHA256 tag that authenticates one frame's header and payload with a session key.
enum FrameTag {
    static func compute(over headerAndPayload: ArraySlice<UInt8>, key: SymmetricKey) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: headerAndPayload, using: key))
    }

    /// Constant-time comparison of a received tag with the expected one.
    static func isValid(_ tag: ArraySlice<UInt8>, over headerAndPayload: ArraySlice<UInt8>, key: SymmetricKey) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(tag, authenticating: headerAndPayload, using: key)
    }
}
