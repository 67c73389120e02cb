/// `ack`: the peer has applied (and for `fsync`, made durable) every frame up to and including
/// `sequence`.
public struct Ack: Equatable, Sendable, PayloadCodable {
    public var sequence: UInt64

    public init(sequence: UInt64) { self.sequence = sequence }

    func encode(into writer: inout ByteWriter) { writer.append(sequence) }

    init(from reader: inout ByteReader) throws {
        sequence = try reader.read(UInt64.self, "sequence")
    }
}

/// `nack`: the frame `sequence` failed on the peer with `errno`; the stream goes on, and the
/// frame counts as handled for later cumulative `ack`s.
public struct Nack: Equatable, Sendable, PayloadCodable {
    public var sequence: UInt64
    public var errno: Int32

    public init(sequence: UInt64, errno: Int32) {
        self.sequence = sequence
        self.errno = errno
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(sequence)
        writer.append(errno)
    }

    init(from reader: inout ByteReader) throws {
        sequence = try reader.read(UInt64.self, "sequence")
        errno = try reader.read(Int32.self, "errno")
    }
}
