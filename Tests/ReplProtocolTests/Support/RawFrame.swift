@testable import ReplProtocol

/// A frame assembled field by field, to build headers the encoder would never produce.
func rawFrame(magic: UInt32 = WireFormat.magic, version: UInt8 = WireFormat.version, type: UInt8,
              flags: UInt16 = 0, length: UInt32? = nil, sequence: UInt64 = 0, payload: [UInt8] = []) -> [UInt8] {
    var writer = ByteWriter()
    writer.append(magic)
    writer.append(version)
    writer.append(type)
    writer.append(flags)
    writer.append(length ?? UInt32(payload.count))
    writer.append(sequence)
    writer.append(raw: payload)
    return writer.bytes
}

/// Decodes everything `decoder` can yield from `bytes`, fed in one piece.
func frames(from bytes: [UInt8], decoder: inout FrameDecoder) throws -> [Frame] {
    decoder.feed(bytes)
    var result: [Frame] = []
    while let frame = try decoder.nextFrame() { result.append(frame) }
    return result
}

/// The error `body` throws, or `nil`.
func protocolError(_ body: () throws -> Void) -> ProtocolError? {
    do {
        try body()
        return nil
    } catch {
        return error as? ProtocolError
    }
}
