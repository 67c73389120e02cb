/// Appends big-endian integers and length-prefixed byte strings to a growing buffer.
struct ByteWriter {
    private(set) var bytes: [UInt8]

    init(reservingCapacity capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    var count: Int { bytes.count }

    mutating func append<Integer: FixedWidthInteger>(_ value: Integer) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func append(_ flag: Bool) {
        append(UInt8(flag ? 1 : 0))
    }

    mutating func append<Bytes: Collection>(raw: Bytes) where Bytes.Element == UInt8 {
        bytes.append(contentsOf: raw)
    }

    /// A byte string preceded by its length as a `UInt16`; callers keep it under 64 KiB.
    mutating func appendShortBytes<Bytes: Collection>(_ value: Bytes) where Bytes.Element == UInt8 {
        append(UInt16(value.count))
        bytes.append(contentsOf: value)
    }

    /// A byte string preceded by its length as a `UInt32` (clamped: the frame's size check
    /// refuses anything that large anyway).
    mutating func appendLongBytes<Bytes: Collection>(_ value: Bytes) where Bytes.Element == UInt8 {
        append(UInt32(clamping: value.count))
        bytes.append(contentsOf: value)
    }

    mutating func appendShortString(_ value: String) {
        appendShortBytes(value.utf8)
    }

    /// Replaces the integer already written at `offset` (used to fill in a frame's length).
    mutating func overwrite<Integer: FixedWidthInteger>(_ value: Integer, at offset: Int) {
        withUnsafeBytes(of: value.bigEndian) { source in
            for (index, byte) in source.enumerated() { bytes[offset + index] = byte }
        }
    }
}
