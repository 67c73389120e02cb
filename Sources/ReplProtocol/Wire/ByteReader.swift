/// Reads big-endian integers and length-prefixed byte strings from a message payload.
///
/// Every read checks the remaining length first and throws ``ProtocolError/truncatedField(_:in:)``
/// naming the field; byte strings come back as slices of the payload, never copies.
struct ByteReader {
    let message: MessageType
    private let bytes: ArraySlice<UInt8>
    private var position: Int

    init(_ bytes: ArraySlice<UInt8>, message: MessageType) {
        self.bytes = bytes
        self.message = message
        self.position = bytes.startIndex
    }

    var remaining: Int { bytes.endIndex - position }

    mutating func read<Integer: FixedWidthInteger>(_: Integer.Type, _ field: String) throws -> Integer {
        let size = MemoryLayout<Integer>.size
        guard remaining >= size else { throw ProtocolError.truncatedField(field, in: message) }
        var value: UInt64 = 0
        for byte in bytes[position..<position + size] { value = value << 8 | UInt64(byte) }
        position += size
        return Integer(truncatingIfNeeded: value)
    }

    mutating func readBool(_ field: String) throws -> Bool {
        switch try read(UInt8.self, field) {
        case 0: return false
        case 1: return true
        case let other: throw invalid(field, "\(other) is not a boolean")
        }
    }

    mutating func readBytes(count: Int, _ field: String) throws -> ArraySlice<UInt8> {
        guard remaining >= count else { throw ProtocolError.truncatedField(field, in: message) }
        defer { position += count }
        return bytes[position..<position + count]
    }

    /// A byte string preceded by its `UInt16` length, at most `limit` bytes long.
    mutating func readShortBytes(_ field: String, limit: Int) throws -> ArraySlice<UInt8> {
        let length = Int(try read(UInt16.self, field))
        guard length <= limit else {
            throw ProtocolError.fieldTooLong(field, length: length, limit: limit, in: message)
        }
        return try readBytes(count: length, field)
    }

    /// A byte string preceded by its `UInt32` length, at most `limit` bytes long.
    mutating func readLongBytes(_ field: String, limit: Int) throws -> ArraySlice<UInt8> {
        let length = Int(try read(UInt32.self, field))
        guard length <= limit else {
            throw ProtocolError.fieldTooLong(field, length: length, limit: limit, in: message)
        }
        return try readBytes(count: length, field)
    }

    /// A UTF-8 string preceded by its `UInt16` length; invalid UTF-8 is refused, not repaired.
    mutating func readShortString(_ field: String, limit: Int) throws -> String {
        let raw = try readShortBytes(field, limit: limit)
        let string = String(decoding: raw, as: UTF8.self)
        guard string.utf8.elementsEqual(raw) else { throw invalid(field, "not valid UTF-8") }
        return string
    }

    /// Throws unless the whole payload was consumed.
    func finish() throws {
        if remaining > 0 { throw ProtocolError.trailingBytes(remaining, in: message) }
    }

    func invalid(_ field: String, _ reason: String) -> ProtocolError {
        .invalidField(field, reason: reason, in: message)
    }
}
