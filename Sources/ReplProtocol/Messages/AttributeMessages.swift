/// A point in time as utimensat(2) takes it.
public struct Timestamp: Hashable, Sendable {
    public var seconds: Int64
    /// 0 ..< 1_000_000_000.
    public var nanoseconds: UInt32

    public init(seconds: Int64, nanoseconds: UInt32) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }
}

/// What to do with one of a file's times, as utimensat(2)'s `UTIME_OMIT` / `UTIME_NOW`.
///
/// The primary should prefer `.set` with the time it applied, so both copies carry the same
/// time; `.now` makes the peer use its own clock.
public enum TimeChange: Hashable, Sendable {
    case omit
    case now
    case set(Timestamp)
}

/// `setattr`: chmod / chown / truncate / utimens on `node`; `nil` fields stay unchanged.
public struct SetAttributes: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var node: NodeRef
    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    public var size: UInt64?
    public var accessTime: TimeChange
    public var modificationTime: TimeChange

    public init(module: UInt16, node: NodeRef, mode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil,
                size: UInt64? = nil, accessTime: TimeChange = .omit, modificationTime: TimeChange = .omit) {
        self.module = module
        self.node = node
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.accessTime = accessTime
        self.modificationTime = modificationTime
    }

    /// Bits of the presence byte: which of mode, uid, gid, size follow.
    private enum Present {
        static let mode: UInt8 = 1 << 0
        static let uid: UInt8 = 1 << 1
        static let gid: UInt8 = 1 << 2
        static let size: UInt8 = 1 << 3
        static let all: UInt8 = mode | uid | gid | size
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(node)
        var present: UInt8 = 0
        if mode != nil { present |= Present.mode }
        if uid != nil { present |= Present.uid }
        if gid != nil { present |= Present.gid }
        if size != nil { present |= Present.size }
        writer.append(present)
        if let mode { writer.append(mode) }
        if let uid { writer.append(uid) }
        if let gid { writer.append(gid) }
        if let size { writer.append(size) }
        writer.append(accessTime)
        writer.append(modificationTime)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        node = try reader.readNode("node")
        let present = try reader.read(UInt8.self, "present fields")
        guard present & ~Present.all == 0 else { throw reader.invalid("present fields", "unknown bits \(present)") }
        mode = present & Present.mode != 0 ? try reader.read(UInt32.self, "mode") : nil
        uid = present & Present.uid != 0 ? try reader.read(UInt32.self, "uid") : nil
        gid = present & Present.gid != 0 ? try reader.read(UInt32.self, "gid") : nil
        size = present & Present.size != 0 ? try reader.read(UInt64.self, "size") : nil
        accessTime = try reader.readTimeChange("access time")
        modificationTime = try reader.readTimeChange("modification time")
    }
}

/// `setxattr`: set the extended attribute `name` of `node` to `value` (`flags`: `XATTR_CREATE`,
/// `XATTR_REPLACE`).
public struct SetXattr: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var node: NodeRef
    public var name: XattrName
    public var value: [UInt8]
    public var flags: UInt32

    /// Linux's `XATTR_SIZE_MAX`.
    public static let maximumValueLength = 65536

    public init(module: UInt16, node: NodeRef, name: XattrName, value: [UInt8], flags: UInt32) {
        self.module = module
        self.node = node
        self.name = name
        self.value = value
        self.flags = flags
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(node)
        writer.append(name)
        writer.appendLongBytes(value)
        writer.append(flags)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        node = try reader.readNode("node")
        name = try reader.readXattrName("name")
        value = Array(try reader.readLongBytes("value", limit: SetXattr.maximumValueLength))
        flags = try reader.read(UInt32.self, "flags")
    }
}

/// `removexattr`: remove the extended attribute `name` of `node`.
public struct RemoveXattr: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var node: NodeRef
    public var name: XattrName

    public init(module: UInt16, node: NodeRef, name: XattrName) {
        self.module = module
        self.node = node
        self.name = name
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(node)
        writer.append(name)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        node = try reader.readNode("node")
        name = try reader.readXattrName("name")
    }
}

extension ByteWriter {
    /// One byte (0 omit, 1 now, 2 set), then for `set` seconds (Int64) and nanoseconds (UInt32).
    mutating func append(_ change: TimeChange) {
        switch change {
        case .omit: append(UInt8(0))
        case .now: append(UInt8(1))
        case .set(let time):
            append(UInt8(2))
            append(time)
        }
    }
}

extension ByteReader {
    mutating func readTimeChange(_ field: String) throws -> TimeChange {
        switch try read(UInt8.self, field) {
        case 0: return .omit
        case 1: return .now
        case 2:
            return .set(try readTimestamp(field))
        case let other:
            throw invalid(field, "unknown kind \(other)")
        }
    }
}
