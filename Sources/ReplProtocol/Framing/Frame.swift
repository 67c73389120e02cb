/// One decoded frame: its header fields and its payload as a slice of the received bytes.
///
/// The payload shares storage with the decoder's buffer (no copy); turn it into a ``Message``
/// with ``Message/init(decoding:)``.
public struct Frame: Equatable {
    public let type: MessageType
    public let flags: FrameFlags
    /// 0 for handshake frames; 1, 2, 3... per direction once the session is authenticated.
    public let sequence: UInt64
    public let payload: ArraySlice<UInt8>

    init(type: MessageType, flags: FrameFlags, sequence: UInt64, payload: ArraySlice<UInt8>) {
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.payload = payload
    }
}
