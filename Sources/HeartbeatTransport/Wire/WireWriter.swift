/// Appends big-endian integers and short strings to a datagram being built.
struct WireWriter {
    private(set) var bytes: [UInt8] = []

    init(reservingCapacity capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    var count: Int { bytes.count }

    mutating func append<Integer: FixedWidthInteger>(_ value: Integer) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func append(_ flag: Bool) { append(UInt8(flag ? 1 : 0)) }

    mutating func append<Bytes: Collection>(raw: Bytes) where Bytes.Element == UInt8 {
        bytes.append(contentsOf: raw)
    }

    /// A UTF-8 string preceded by its length as one byte.
    /// - Throws: ``WireError/tooLong(_:length:)`` beyond 255 bytes.
    mutating func appendName(_ value: String, _ field: String) throws {
        let utf8 = Array(value.utf8)
        guard utf8.count <= Int(UInt8.max) else { throw WireError.tooLong(field, length: utf8.count) }
        append(UInt8(utf8.count))
        bytes.append(contentsOf: utf8)
    }
}

/// Why bytes are not a valid datagram of this protocol, or why a value cannot be encoded.
public enum WireError: Error, Equatable, CustomStringConvertible {
    case truncated(String)
    case invalid(String, String)
    case tooLong(String, length: Int)
    case trailing(Int, after: String)

    public var description: String {
        switch self {
        case .truncated(let field): return "truncated at \(field)"
        case .invalid(let field, let why): return "invalid \(field): \(why)"
        case .tooLong(let field, let length): return "\(field) is \(length) bytes long, at most 255 fit"
        case .trailing(let count, let what): return "\(count) unexpected bytes after \(what)"
        }
    }
}
