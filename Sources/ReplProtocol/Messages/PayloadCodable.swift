/// A message payload that writes itself into a frame and reads itself back, refusing anything
/// malformed with a ``ProtocolError`` that names the field.
protocol PayloadCodable {
    func encode(into writer: inout ByteWriter)
    init(from reader: inout ByteReader) throws
}
