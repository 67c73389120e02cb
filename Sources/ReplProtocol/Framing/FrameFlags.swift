/// Bits of the header's flags field; any bit not defined here is refused.
public struct FrameFlags: OptionSet, Sendable {
    public let rawValue: UInt16

    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// A 16-byte AES-GCM tag (GMAC, see `FrameTag`) follows the payload (every frame after the handshake).
    public static let authenticated = FrameFlags(rawValue: 1 << 0)

    static let known: FrameFlags = [.authenticated]
}
