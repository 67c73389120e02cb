/// One name inside a directory, as raw bytes: Linux names need not be UTF-8.
///
/// Valid: 1 to 255 bytes, no `/` or NUL, not `.` or `..`; so a name from the peer can never
/// leave the directory it is applied in.
public struct FileName: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        guard FileName.problem(with: bytes) == nil else { return nil }
        self.bytes = Array(bytes)
    }

    /// For bytes the reader has already validated.
    fileprivate init(validated bytes: ArraySlice<UInt8>) { self.bytes = Array(bytes) }

    public init?(_ string: String) { self.init(bytes: string.utf8) }

    public var description: String { String(decoding: bytes, as: UTF8.self) }

    static let maximumLength = 255

    static func problem<Bytes: Collection>(with bytes: Bytes) -> String? where Bytes.Element == UInt8 {
        if bytes.isEmpty { return "empty name" }
        if bytes.count > maximumLength { return "name of \(bytes.count) bytes exceeds 255" }
        if bytes.contains(UInt8(ascii: "/")) || bytes.contains(0) { return "name contains '/' or NUL" }
        if bytes.elementsEqual([UInt8(ascii: ".")]) || bytes.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
            return "name is '.' or '..'"
        }
        return nil
    }
}

/// A file's path relative to the module's root, e.g. `db/base/1234`: valid names joined by `/`,
/// at most 4096 bytes. Used where no ``NodeRef`` is known yet (resynchronisation, verify).
public struct RelativePath: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        guard RelativePath.problem(with: bytes) == nil else { return nil }
        self.bytes = Array(bytes)
    }

    /// For bytes the reader has already validated.
    fileprivate init(validated bytes: ArraySlice<UInt8>) { self.bytes = Array(bytes) }

    public init?(_ string: String) { self.init(bytes: string.utf8) }

    public var description: String { String(decoding: bytes, as: UTF8.self) }

    static let maximumLength = 4096

    static func problem<Bytes: Collection>(with bytes: Bytes) -> String? where Bytes.Element == UInt8 {
        if bytes.count > maximumLength { return "path of \(bytes.count) bytes exceeds 4096" }
        let components = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        for component in components {
            if let problem = FileName.problem(with: component) { return "path component: \(problem)" }
        }
        return nil
    }
}

/// What a symbolic link points to: 1 to 4095 bytes without NUL, stored as given (may be absolute).
public struct SymlinkTarget: Hashable, Sendable {
    public let bytes: [UInt8]

    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        guard SymlinkTarget.problem(with: bytes) == nil else { return nil }
        self.bytes = Array(bytes)
    }

    /// For bytes the reader has already validated.
    fileprivate init(validated bytes: ArraySlice<UInt8>) { self.bytes = Array(bytes) }

    public init?(_ string: String) { self.init(bytes: string.utf8) }

    static func problem<Bytes: Collection>(with bytes: Bytes) -> String? where Bytes.Element == UInt8 {
        if bytes.isEmpty { return "empty target" }
        if bytes.count > 4095 { return "target of \(bytes.count) bytes exceeds 4095" }
        if bytes.contains(0) { return "target contains NUL" }
        return nil
    }
}

/// An extended attribute's name, e.g. `user.comment`: 1 to 255 bytes without NUL.
public struct XattrName: Hashable, Sendable {
    public let bytes: [UInt8]

    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        guard XattrName.problem(with: bytes) == nil else { return nil }
        self.bytes = Array(bytes)
    }

    /// For bytes the reader has already validated.
    fileprivate init(validated bytes: ArraySlice<UInt8>) { self.bytes = Array(bytes) }

    public init?(_ string: String) { self.init(bytes: string.utf8) }

    static func problem<Bytes: Collection>(with bytes: Bytes) -> String? where Bytes.Element == UInt8 {
        if bytes.isEmpty { return "empty attribute name" }
        if bytes.count > 255 { return "attribute name of \(bytes.count) bytes exceeds 255" }
        if bytes.contains(0) { return "attribute name contains NUL" }
        return nil
    }
}

extension ByteWriter {
    mutating func append(_ name: FileName) { appendShortBytes(name.bytes) }
    mutating func append(_ path: RelativePath) { appendShortBytes(path.bytes) }
    mutating func append(_ target: SymlinkTarget) { appendShortBytes(target.bytes) }
    mutating func append(_ name: XattrName) { appendShortBytes(name.bytes) }
}

extension ByteReader {
    mutating func readName(_ field: String) throws -> FileName {
        let raw = try readShortBytes(field, limit: FileName.maximumLength)
        if let problem = FileName.problem(with: raw) { throw invalid(field, problem) }
        return FileName(validated: raw)
    }

    mutating func readPath(_ field: String) throws -> RelativePath {
        let raw = try readShortBytes(field, limit: RelativePath.maximumLength)
        if let problem = RelativePath.problem(with: raw) { throw invalid(field, problem) }
        return RelativePath(validated: raw)
    }

    mutating func readSymlinkTarget(_ field: String) throws -> SymlinkTarget {
        let raw = try readShortBytes(field, limit: 4095)
        if let problem = SymlinkTarget.problem(with: raw) { throw invalid(field, problem) }
        return SymlinkTarget(validated: raw)
    }

    mutating func readXattrName(_ field: String) throws -> XattrName {
        let raw = try readShortBytes(field, limit: 255)
        if let problem = XattrName.problem(with: raw) { throw invalid(field, problem) }
        return XattrName(validated: raw)
    }
}
