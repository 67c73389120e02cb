import Crypto

/// A frame ready to send, with the sequence number the peer will acknowledge it by.
public struct EncodedFrame {
    public let sequence: UInt64
    public let bytes: [UInt8]
}

/// Turns messages into frames for the peer: header, payload and, once the session keys exist,
/// the sequence number and integrity tag.
///
/// Each message is written straight into the frame's buffer, so a write's data is copied once.
public struct FrameEncoder {
    private var sendingKey: SymmetricKey?
    private var nextSequence: UInt64

    /// An encoder for handshake frames: sequence 0, no tag.
    public init() {
        sendingKey = nil
        nextSequence = 0
    }

    /// An encoder for the established session: tags made with `sendingKey`, sequences 1, 2, 3...
    public init(sendingKey: SymmetricKey) {
        self.sendingKey = sendingKey
        nextSequence = 1
    }

    /// The frame carrying `message`; throws ``ProtocolError/frameTooLarge(length:limit:)`` if it
    /// would not fit (split writes and checksum lists before).
    public mutating func encode(_ message: Message) throws -> EncodedFrame {
        try encode(message.type, payloadCapacity: message.payloadSizeHint) { message.encodePayload(into: &$0) }
    }

    /// The frame of a `write` taken straight from a raw buffer (e.g. the one the kernel handed
    /// over), without first copying it into a ``Write``.
    public mutating func encodeWrite(module: UInt16, node: NodeRef, offset: UInt64,
                                     data: UnsafeRawBufferPointer) throws -> EncodedFrame {
        try encode(.write, payloadCapacity: Write.fieldsLength + data.count) {
            Write.encode(module: module, node: node, offset: offset, data: data, into: &$0)
        }
    }

    private mutating func encode(_ type: MessageType, payloadCapacity: Int,
                                 payload: (inout ByteWriter) -> Void) throws -> EncodedFrame {
        let flags: FrameFlags = sendingKey == nil ? [] : .authenticated
        let capacity = min(payloadCapacity, WireFormat.maximumPayloadLength)
        var writer = ByteWriter(reservingCapacity: WireFormat.headerLength + capacity + WireFormat.tagLength)
        FrameHeader(type: type, flags: flags, payloadLength: 0, sequence: nextSequence).write(into: &writer)
        payload(&writer)
        let payloadLength = writer.count - WireFormat.headerLength
        guard payloadLength <= WireFormat.maximumPayloadLength else {
            throw ProtocolError.frameTooLarge(length: payloadLength + WireFormat.headerLength + WireFormat.tagLength,
                                              limit: WireFormat.maximumFrameLength)
        }
        writer.overwrite(UInt32(payloadLength), at: FrameHeader.payloadLengthOffset)
        if let sendingKey {
            let tag = FrameTag.compute(over: writer.bytes[...], key: sendingKey)
            writer.append(raw: tag)
        }
        let sequence = nextSequence
        if sendingKey != nil { nextSequence += 1 }
        return EncodedFrame(sequence: sequence, bytes: writer.bytes)
    }
}
