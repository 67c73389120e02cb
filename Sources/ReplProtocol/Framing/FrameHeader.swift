/// The fixed 20-byte header at the start of every frame, read and written in network byte order.
struct FrameHeader {
    let type: MessageType
    let flags: FrameFlags
    let payloadLength: Int
    let sequence: UInt64

    /// Length of the whole frame on the wire, tag included.
    var frameLength: Int {
        WireFormat.headerLength + payloadLength + (flags.contains(.authenticated) ? WireFormat.tagLength : 0)
    }

    /// Validates the header at the start of `bytes` (at least ``WireFormat/headerLength`` long);
    /// the size limit is checked here, before anything is allocated for the payload.
    init(parsing bytes: ArraySlice<UInt8>, maximumPayloadLength: Int) throws {
        func integer(at offset: Int, size: Int) -> UInt64 {
            let start = bytes.startIndex + offset
            return bytes[start..<start + size].reduce(0) { $0 << 8 | UInt64($1) }
        }
        let magic = UInt32(integer(at: 0, size: 4))
        guard magic == WireFormat.magic else { throw ProtocolError.badMagic(magic) }
        let version = UInt8(integer(at: 4, size: 1))
        guard version == WireFormat.version else {
            throw ProtocolError.unsupportedVersion(received: version, supported: WireFormat.version)
        }
        let code = UInt8(integer(at: 5, size: 1))
        guard let type = MessageType(rawValue: code) else { throw ProtocolError.unknownMessageType(code) }
        let flags = FrameFlags(rawValue: UInt16(integer(at: 6, size: 2)))
        guard FrameFlags.known.isSuperset(of: flags) else { throw ProtocolError.unknownFlags(flags.rawValue) }
        let payloadLength = Int(integer(at: 8, size: 4))
        guard payloadLength <= maximumPayloadLength else {
            let overhead = WireFormat.headerLength + WireFormat.tagLength
            throw ProtocolError.frameTooLarge(length: payloadLength + overhead, limit: maximumPayloadLength + overhead)
        }
        self.type = type
        self.flags = flags
        self.payloadLength = payloadLength
        self.sequence = integer(at: 12, size: 8)
    }

    init(type: MessageType, flags: FrameFlags, payloadLength: Int, sequence: UInt64) {
        self.type = type
        self.flags = flags
        self.payloadLength = payloadLength
        self.sequence = sequence
    }

    func write(into writer: inout ByteWriter) {
        writer.append(WireFormat.magic)
        writer.append(WireFormat.version)
        writer.append(type.rawValue)
        writer.append(flags.rawValue)
        writer.append(UInt32(payloadLength))
        writer.append(sequence)
    }

    /// Offset of the payload-length field, filled in once the payload is written.
    static let payloadLengthOffset = 8
}
