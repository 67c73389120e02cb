/// Attributes of one file, directory or other entry, as a resync carries them.
public struct EntryAttributes: Hashable, Sendable {
    /// The full `st_mode`: file type and permission bits.
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    /// Regular files: the size; others: 0.
    public var size: UInt64
    public var accessTime: Timestamp
    public var modificationTime: Timestamp
    /// Extended attributes, sorted by name.
    public var xattrs: [Xattr]

    /// One extended attribute.
    public struct Xattr: Hashable, Sendable {
        public var name: XattrName
        public var value: [UInt8]

        public init(name: XattrName, value: [UInt8]) {
            self.name = name
            self.value = value
        }
    }

    public init(mode: UInt32, uid: UInt32, gid: UInt32, size: UInt64, accessTime: Timestamp,
                modificationTime: Timestamp, xattrs: [Xattr]) {
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.accessTime = accessTime
        self.modificationTime = modificationTime
        self.xattrs = xattrs
    }

    /// Most extended attributes of one entry.
    static let maximumXattrs = 256

    /// Roughly the encoded size, to split manifests into frames.
    public var encodedLengthEstimate: Int {
        4 * 3 + 8 + 12 * 2 + 2 + xattrs.reduce(0) { $0 + 4 + $1.name.bytes.count + $1.value.count }
    }
}

/// One entry of a directory listing sent by a resync.
public struct ManifestEntry: Hashable, Sendable {
    public var name: FileName
    public var attributes: EntryAttributes
    /// For device nodes: the device number; 0 otherwise.
    public var rdev: UInt64
    /// For regular files with several hard links: an id shared by every name of the file within
    /// one resync (the source's inode number); 0 for files with one name and other entries.
    public var linkKey: UInt64
    /// For symbolic links: the target.
    public var symlinkTarget: SymlinkTarget?

    public init(name: FileName, attributes: EntryAttributes, rdev: UInt64 = 0, linkKey: UInt64 = 0,
                symlinkTarget: SymlinkTarget? = nil) {
        self.name = name
        self.attributes = attributes
        self.rdev = rdev
        self.linkKey = linkKey
        self.symlinkTarget = symlinkTarget
    }

    /// Roughly the encoded size, to split manifests into frames.
    public var encodedLengthEstimate: Int {
        2 + name.bytes.count + attributes.encodedLengthEstimate + 16 + 2 + (symlinkTarget?.bytes.count ?? 0)
    }
}

/// `resyncDirectory`: the source's listing of one directory (by path; the root is the empty
/// path, sent as `nil`), sent under the directory's lock. The target makes its directory hold
/// exactly these entries: it removes the others, creates the missing ones (regular files
/// empty; directories empty, their attributes come with their own listing), replaces entries
/// of another type (or symbolic links with another target), and sets the attributes of the
/// entries it created or replaced and of existing symbolic links, devices, fifos and sockets.
/// Existing regular files keep their content, size and attributes: `resyncFile` sets those, under
/// the file's own lock. A long listing comes in parts; entries missing from every part are
/// removed when the part with `isLast` arrives, then the directory's own attributes are set.
public struct DirectoryManifest: Hashable, Sendable, PayloadCodable {
    public var module: UInt16
    /// nil: the module's root directory.
    public var path: RelativePath?
    /// The directory's own attributes, set after its entries.
    public var attributes: EntryAttributes
    public var part: UInt32
    public var isLast: Bool
    public var entries: [ManifestEntry]

    /// Most entries in one part.
    public static let maximumEntries = 16384

    public init(module: UInt16, path: RelativePath?, attributes: EntryAttributes, part: UInt32, isLast: Bool,
                entries: [ManifestEntry]) {
        self.module = module
        self.path = path
        self.attributes = attributes
        self.part = part
        self.isLast = isLast
        self.entries = entries
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.appendOptionalPath(path)
        writer.append(attributes)
        writer.append(part)
        writer.append(isLast)
        writer.append(UInt32(entries.count))
        for entry in entries {
            writer.append(entry.name)
            writer.append(entry.attributes)
            writer.append(entry.rdev)
            writer.append(entry.linkKey)
            if let target = entry.symlinkTarget {
                writer.append(true)
                writer.append(target)
            } else {
                writer.append(false)
            }
        }
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        path = try reader.readOptionalPath("path")
        attributes = try reader.readEntryAttributes("directory attributes")
        part = try reader.read(UInt32.self, "part")
        isLast = try reader.readBool("last part")
        let count = Int(try reader.read(UInt32.self, "entry count"))
        guard count <= Self.maximumEntries else { throw reader.invalid("entry count", "\(count) exceeds \(Self.maximumEntries)") }
        var entries: [ManifestEntry] = []
        entries.reserveCapacity(min(count, 1024))
        for _ in 0..<count {
            let name = try reader.readName("entry name")
            let attributes = try reader.readEntryAttributes("entry attributes")
            let rdev = try reader.read(UInt64.self, "rdev")
            let linkKey = try reader.read(UInt64.self, "link key")
            let target = try reader.readBool("has symlink target") ? try reader.readSymlinkTarget("symlink target") : nil
            entries.append(ManifestEntry(name: name, attributes: attributes, rdev: rdev, linkKey: linkKey, symlinkTarget: target))
        }
        self.entries = entries
    }
}

/// `resyncFile`: the source's attributes of one regular file, sent under the file's lock after
/// the regions the resync sent for it (or alone, when none differed). The target sets the size
/// (ftruncate), mode, owner and extended attributes, then the times (writing regions changed them).
/// A directory listing never changes an existing file's size or attributes: this message does,
/// in the file's own order on the stream.
public struct ResyncFile: Hashable, Sendable, PayloadCodable {
    public var module: UInt16
    public var path: RelativePath
    public var attributes: EntryAttributes

    public init(module: UInt16, path: RelativePath, attributes: EntryAttributes) {
        self.module = module
        self.path = path
        self.attributes = attributes
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(path)
        writer.append(attributes)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        path = try reader.readPath("path")
        attributes = try reader.readEntryAttributes("file attributes")
    }
}

extension ByteWriter {
    mutating func appendOptionalPath(_ path: RelativePath?) {
        if let path {
            append(true)
            append(path)
        } else {
            append(false)
        }
    }

    mutating func append(_ time: Timestamp) {
        append(time.seconds)
        append(time.nanoseconds)
    }

    mutating func append(_ attributes: EntryAttributes) {
        append(attributes.mode)
        append(attributes.uid)
        append(attributes.gid)
        append(attributes.size)
        append(attributes.accessTime)
        append(attributes.modificationTime)
        append(UInt16(attributes.xattrs.count))
        for xattr in attributes.xattrs {
            append(xattr.name)
            appendLongBytes(xattr.value)
        }
    }
}

extension ByteReader {
    mutating func readOptionalPath(_ field: String) throws -> RelativePath? {
        try readBool(field) ? try readPath(field) : nil
    }

    mutating func readTimestamp(_ field: String) throws -> Timestamp {
        let seconds = try read(Int64.self, field)
        let nanoseconds = try read(UInt32.self, field)
        guard nanoseconds < 1_000_000_000 else { throw invalid(field, "\(nanoseconds) nanoseconds") }
        return Timestamp(seconds: seconds, nanoseconds: nanoseconds)
    }

    mutating func readEntryAttributes(_ field: String) throws -> EntryAttributes {
        let mode = try read(UInt32.self, field)
        let uid = try read(UInt32.self, field)
        let gid = try read(UInt32.self, field)
        let size = try read(UInt64.self, field)
        let accessTime = try readTimestamp(field)
        let modificationTime = try readTimestamp(field)
        let count = Int(try read(UInt16.self, field))
        guard count <= EntryAttributes.maximumXattrs else { throw invalid(field, "\(count) extended attributes") }
        var xattrs: [EntryAttributes.Xattr] = []
        for _ in 0..<count {
            let name = try readXattrName(field)
            let value = Array(try readLongBytes(field, limit: SetXattr.maximumValueLength))
            xattrs.append(EntryAttributes.Xattr(name: name, value: value))
        }
        return EntryAttributes(mode: mode, uid: uid, gid: gid, size: size, accessTime: accessTime,
                               modificationTime: modificationTime, xattrs: xattrs)
    }
}

/// `verifyReply`: the differences the peer found for the `verifyDirectory` or `regionChecksumsRequest`
/// frame `requestSequence`, one human-readable line each (`verify` changes nothing).
public struct VerifyReply: Hashable, Sendable, PayloadCodable {
    public var requestSequence: UInt64
    public var differences: [String]

    /// Most lines in one reply; more are summarised by the last line.
    public static let maximumDifferences = 1000
    static let maximumLineLength = 2048

    public init(requestSequence: UInt64, differences: [String]) {
        self.requestSequence = requestSequence
        if differences.count > Self.maximumDifferences {
            self.differences = Array(differences.prefix(Self.maximumDifferences - 1))
                + ["... and \(differences.count - Self.maximumDifferences + 1) more differences"]
        } else {
            self.differences = differences
        }
        self.differences = self.differences.map { String($0.utf8.prefix(Self.maximumLineLength - 4)) ?? "" }
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(requestSequence)
        writer.append(UInt32(differences.count))
        for line in differences { writer.appendLongBytes(Array(line.utf8)) }
    }

    init(from reader: inout ByteReader) throws {
        requestSequence = try reader.read(UInt64.self, "request sequence")
        let count = Int(try reader.read(UInt32.self, "difference count"))
        guard count <= Self.maximumDifferences else { throw reader.invalid("difference count", "\(count) exceeds \(Self.maximumDifferences)") }
        var lines: [String] = []
        for _ in 0..<count {
            lines.append(String(decoding: try reader.readLongBytes("difference", limit: Self.maximumLineLength), as: UTF8.self))
        }
        differences = lines
    }
}
