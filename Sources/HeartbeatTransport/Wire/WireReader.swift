/// Reads big-endian integers and short strings from a received datagram; every read checks the
/// remaining length first and names the field when it falls short.
struct WireReader {
    private let bytes: ArraySlice<UInt8>
    private(set) var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    var remaining: Int { bytes.endIndex - position }

    mutating func read<Integer: FixedWidthInteger>(_: Integer.Type, _ field: String) throws -> Integer {
        let size = MemoryLayout<Integer>.size
        guard remaining >= size else { throw WireError.truncated(field) }
        var value: UInt64 = 0
        for byte in bytes[position..<position + size] { value = value << 8 | UInt64(byte) }
        position += size
        return Integer(truncatingIfNeeded: value)
    }

    mutating func readBool(_ field: String) throws -> Bool {
        switch try read(UInt8.self, field) {
        case 0: return false
        case 1: return true
        case let other: throw WireError.invalid(field, "\(other) is not a boolean")
        }
    }

    mutating func readBytes(_ count: Int, _ field: String) throws -> ArraySlice<UInt8> {
        guard remaining >= count else { throw WireError.truncated(field) }
        defer { position += count }
        return bytes[position..<position + count]
    }

    /// A UTF-8 string preceded by its one-byte length; invalid UTF-8 and empty names are refused.
    mutating func readName(_ field: String) throws -> String {
        let length = Int(try read(UInt8.self, field))
        guard length > 0 else { throw WireError.invalid(field, "empty") }
        guard let text = String(validating: try readBytes(length, field), as: UTF8.self) else {
            throw WireError.invalid(field, "not UTF-8")
        }
        return text
    }

    func expectEnd(_ what: String) throws {
        guard remaining == 0 else { throw WireError.trailing(remaining, after: what) }
    }
}
