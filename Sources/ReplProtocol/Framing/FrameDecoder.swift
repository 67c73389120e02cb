import Crypto

/// Cuts the byte stream received from the peer into frames, checking each header, size limit,
/// integrity tag and sequence number.
///
/// Feed it chunks as they arrive (any size, any split) and take frames with ``nextFrame()``
/// until it returns `nil`. Once the handshake has produced session keys, call
/// ``requireAuthentication(with:)`` before taking the next frame. The first error is final:
/// every later call throws it again, since the stream can no longer be trusted.
///
/// Memory: the buffer holds at most one incomplete frame (never more than
/// ``WireFormat/maximumFrameLength``, reserved only once its header passed the size check)
/// plus the last chunk fed. Frames handed out keep their own slice of an older buffer alive,
/// so payload bytes are copied once, from the chunk into the buffer.
public struct FrameDecoder {
    private let maximumPayloadLength: Int
    private var buffer: [UInt8] = []
    /// Start of the first frame not yet handed out.
    private var readIndex = 0
    /// Length of the frame at `readIndex` once its header is known; used to reserve room for it.
    private var pendingFrameLength = 0
    private var receivingKey: SymmetricKey?
    private var expectedSequence: UInt64 = 0
    private var failure: ProtocolError?

    /// - Parameter maximumPayloadLength: a lower limit than the protocol's, e.g. for tests.
    public init(maximumPayloadLength: Int = WireFormat.maximumPayloadLength) {
        self.maximumPayloadLength = min(maximumPayloadLength, WireFormat.maximumPayloadLength)
    }

    /// Bytes received but not yet handed out as frames.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// Room the buffer holds at the moment (for tests of the memory bound).
    var bufferCapacity: Int { buffer.capacity }

    /// Appends bytes received from the peer.
    public mutating func feed<Bytes: Sequence>(_ chunk: Bytes) where Bytes.Element == UInt8 {
        let needed = max(pendingFrameLength, bufferedByteCount + chunk.underestimatedCount)
        if readIndex > 0 {
            // Start a fresh buffer: handed-out frames keep the old one, so it is never copied on write.
            var fresh: [UInt8] = []
            fresh.reserveCapacity(needed)
            fresh.append(contentsOf: buffer[readIndex...])
            buffer = fresh
            readIndex = 0
        } else if needed > buffer.capacity {
            // Grow geometrically, but never past one maximal frame unless a single chunk needs it.
            buffer.reserveCapacity(max(needed, min(buffer.capacity * 2, WireFormat.maximumFrameLength)))
        }
        buffer.append(contentsOf: chunk)
    }

    /// From now on every frame must carry a valid tag made with `key` and the sequence numbers
    /// 1, 2, 3... in order.
    public mutating func requireAuthentication(with key: SymmetricKey) {
        receivingKey = key
        expectedSequence = 1
    }

    /// The next complete frame, or `nil` until more bytes arrive.
    public mutating func nextFrame() throws -> Frame? {
        if let failure { throw failure }
        do {
            return try decodeFrame()
        } catch let error as ProtocolError {
            failure = error
            throw error
        }
    }

    /// Call when the peer closed the stream: throws if it stopped inside a frame.
    public func finish() throws {
        if let failure { throw failure }
        guard bufferedByteCount > 0 else { return }
        let expected = pendingFrameLength > 0 ? pendingFrameLength : WireFormat.headerLength
        throw ProtocolError.truncatedFrame(received: bufferedByteCount, expected: expected)
    }

    private mutating func decodeFrame() throws -> Frame? {
        guard bufferedByteCount >= WireFormat.headerLength else { return nil }
        let header = try FrameHeader(parsing: buffer[readIndex...], maximumPayloadLength: maximumPayloadLength)
        try checkAuthenticationFlag(of: header)
        guard bufferedByteCount >= header.frameLength else {
            pendingFrameLength = header.frameLength
            return nil
        }
        let payloadStart = readIndex + WireFormat.headerLength
        let payloadEnd = payloadStart + header.payloadLength
        if let receivingKey {
            let tag = buffer[payloadEnd..<payloadEnd + WireFormat.tagLength]
            guard FrameTag.isValid(tag, over: buffer[readIndex..<payloadEnd], key: receivingKey) else {
                throw ProtocolError.badIntegrityTag(sequence: header.sequence)
            }
        }
        guard header.sequence == expectedSequence else {
            throw ProtocolError.sequenceOutOfOrder(received: header.sequence, expected: expectedSequence)
        }
        if receivingKey != nil { expectedSequence += 1 }
        readIndex += header.frameLength
        pendingFrameLength = 0
        return Frame(type: header.type, flags: header.flags, sequence: header.sequence,
                     payload: buffer[payloadStart..<payloadEnd])
    }

    private func checkAuthenticationFlag(of header: FrameHeader) throws {
        let tagged = header.flags.contains(.authenticated)
        if receivingKey != nil, !tagged { throw ProtocolError.missingIntegrityTag(sequence: header.sequence) }
        if receivingKey == nil, tagged { throw ProtocolError.unexpectedIntegrityTag(sequence: header.sequence) }
    }
}
