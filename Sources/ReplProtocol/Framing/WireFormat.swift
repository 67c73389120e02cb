/// Constants of the frame layout and its size limits.
public enum WireFormat {
    /// The protocol version this library speaks, in every frame header and in `Hello`.
    public static let version: UInt8 = 1
    /// "MIRR": the first four bytes of every frame.
    public static let magic: UInt32 = 0x4D49_5252
    /// magic(4) version(1) type(1) flags(2) payload length(4) sequence(8).
    public static let headerLength = 20
    /// AES-GCM tag (see `FrameTag`), after the payload of an authenticated frame.
    public static let tagLength = 16
    /// The largest data block of one `write` or `resyncRegion`: 4 MiB.
    public static let maximumDataLength = (4 << 20)
    /// The largest payload: a maximal data block plus room for its fields (a path is at most 4 KiB).
    public static let maximumPayloadLength = maximumDataLength + (8 << 10)
    /// The largest frame on the wire; the decoder never buffers more than this for one frame.
    public static let maximumFrameLength = headerLength + maximumPayloadLength + tagLength
}
