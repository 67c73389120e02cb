/// Which file a resynchronisation frame is about: a node both sides know, or a path from the
/// module's root when none is bound yet.
public enum FileTarget: Hashable, Sendable {
    case node(NodeRef)
    case path(RelativePath)
}

/// `resyncRegion`: the primary's current content of a region, written by the peer as is.
/// Decoded, `data` is a slice of the received frame.
public struct ResyncRegion: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var target: FileTarget
    public var offset: UInt64
    public var data: ArraySlice<UInt8>

    public init(module: UInt16, target: FileTarget, offset: UInt64, data: ArraySlice<UInt8>) {
        self.module = module
        self.target = target
        self.offset = offset
        self.data = data
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(target)
        writer.append(offset)
        writer.appendLongBytes(data)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        target = try reader.readFileTarget("target")
        offset = try reader.read(UInt64.self, "offset")
        data = try reader.readLongBytes("data", limit: WireFormat.maximumDataLength)
    }
}

/// The digest of region `index` (bytes `index * regionSize ..< (index + 1) * regionSize`).
public struct RegionDigest: Hashable, Sendable {
    public var index: UInt64
    public var digest: ContentDigest

    public init(index: UInt64, digest: ContentDigest) {
        self.index = index
        self.digest = digest
    }
}

/// Region digests of one file, by strictly increasing index.
///
/// `regionChecksumsRequest` carries the sender's digests; the `regionChecksumsReply` carries
/// the replier's own digests for regions of that request (which ones, e.g. only those that
/// differ, is the resynchronisation's choice). A large file takes several requests.
public struct RegionChecksums: Equatable, Sendable, PayloadCodable {
    public var module: UInt16
    public var path: RelativePath
    /// Size of the sender's copy of the file.
    public var fileSize: UInt64
    /// 1 byte to ``WireFormat/maximumDataLength``, so one region fits in one `resyncRegion`.
    public var regionSize: UInt32
    public var digests: [RegionDigest]

    /// Most digests in one message (2.5 MiB of them).
    public static let maximumDigestCount = 65536

    public init(module: UInt16, path: RelativePath, fileSize: UInt64, regionSize: UInt32, digests: [RegionDigest]) {
        self.module = module
        self.path = path
        self.fileSize = fileSize
        self.regionSize = regionSize
        self.digests = digests
    }

    private static let encodedDigestLength = 8 + 32

    var encodedLength: Int {
        2 + 2 + path.bytes.count + 8 + 4 + 4 + digests.count * RegionChecksums.encodedDigestLength
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(path)
        writer.append(fileSize)
        writer.append(regionSize)
        writer.append(UInt32(digests.count))
        for entry in digests {
            writer.append(entry.index)
            entry.digest.encode(into: &writer)
        }
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        path = try reader.readPath("path")
        fileSize = try reader.read(UInt64.self, "file size")
        regionSize = try reader.read(UInt32.self, "region size")
        guard regionSize > 0, regionSize <= WireFormat.maximumDataLength else {
            throw reader.invalid("region size", "\(regionSize) is not within 1...\(WireFormat.maximumDataLength)")
        }
        let count = Int(try reader.read(UInt32.self, "digest count"))
        guard count <= RegionChecksums.maximumDigestCount else {
            throw reader.invalid("digest count", "\(count) exceeds \(RegionChecksums.maximumDigestCount)")
        }
        guard count * RegionChecksums.encodedDigestLength <= reader.remaining else {
            throw ProtocolError.truncatedField("digests", in: reader.message)
        }
        var digests: [RegionDigest] = []
        digests.reserveCapacity(count)
        for _ in 0..<count {
            let index = try reader.read(UInt64.self, "region index")
            if let previous = digests.last, index <= previous.index {
                throw reader.invalid("region index", "\(index) after \(previous.index): not increasing")
            }
            digests.append(RegionDigest(index: index, digest: try ContentDigest(from: &reader)))
        }
        self.digests = digests
    }
}

/// `regionChecksumsReply`: the answer to the `regionChecksumsRequest` frame `requestSequence`.
public struct RegionChecksumsReply: Equatable, Sendable, PayloadCodable {
    public var requestSequence: UInt64
    public var checksums: RegionChecksums

    public init(requestSequence: UInt64, checksums: RegionChecksums) {
        self.requestSequence = requestSequence
        self.checksums = checksums
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(requestSequence)
        checksums.encode(into: &writer)
    }

    init(from reader: inout ByteReader) throws {
        requestSequence = try reader.read(UInt64.self, "request sequence")
        checksums = try RegionChecksums(from: &reader)
    }
}

extension ByteWriter {
    /// One byte (0 node, 1 path), then the node id or the length-prefixed path.
    mutating func append(_ target: FileTarget) {
        switch target {
        case .node(let node):
            append(UInt8(0))
            append(node)
        case .path(let path):
            append(UInt8(1))
            append(path)
        }
    }
}

extension ByteReader {
    mutating func readFileTarget(_ field: String) throws -> FileTarget {
        switch try read(UInt8.self, field) {
        case 0: return .node(try readNode(field))
        case 1: return .path(try readPath(field))
        case let other: throw invalid(field, "unknown kind \(other)")
        }
    }
}
