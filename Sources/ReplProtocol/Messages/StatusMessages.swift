/// A node's data generations for one module, as the stream carries them (MirrorCore's
/// `DataGenerations` in raw form; 0 is "just created", a `bitmap` of 0 means none).
public struct WireGenerations: Hashable, Sendable {
    public var current: UInt64
    public var bitmap: UInt64
    /// Newest first; at most ``maximumHistory``.
    public var history: [UInt64]
    public var upToDate: Bool

    static let maximumHistory = 16

    public init(current: UInt64, bitmap: UInt64, history: [UInt64], upToDate: Bool) {
        self.current = current
        self.bitmap = bitmap
        self.history = Array(history.prefix(Self.maximumHistory))
        self.upToDate = upToDate
    }
}

/// Which regions of one file a node holds as possibly different from its peer.
public struct DirtyFile: Hashable, Sendable {
    public enum Regions: Hashable, Sendable {
        /// Every region (the file was created, renamed, truncated... while the peer was away).
        case whole
        /// These region indexes, strictly increasing.
        case some([UInt64])
    }

    public var path: RelativePath
    public var regions: Regions

    public init(path: RelativePath, regions: Regions) {
        self.path = path
        self.regions = regions
    }
}

/// `moduleStatus`: what a node knows of its copy of a module, sent by the primary when the
/// stream starts; the peer answers with its own in a `moduleStatusReply`.
///
/// `dirty` lists the regions the node's activity log and change map hold as possibly
/// different from the peer (by path); the node that will receive a resync sends them so that
/// the source sends those regions too (writes it applied but never saw acknowledged).
public struct ModuleStatus: Hashable, Sendable, PayloadCodable {
    public var module: UInt16
    public var generations: WireGenerations
    /// Whether the sender serves the module now (PRIM or ALONE).
    public var serving: Bool
    /// Unix time at which the sender's current generation began without its peer; 0: it did not.
    public var aloneSince: Int64
    public var dirty: [DirtyFile]
    /// False when the sender holds more possibly-different files than `dirty` could list: a
    /// resync towards it must then compare everything by checksums.
    public var dirtyListComplete: Bool

    /// Most dirty files listed; a node with more asks for a checksum comparison instead.
    public static let maximumDirtyFiles = 4096
    /// Most region indexes over all listed files.
    public static let maximumDirtyRegions = 65536

    public init(module: UInt16, generations: WireGenerations, serving: Bool, aloneSince: Int64 = 0, dirty: [DirtyFile],
                dirtyListComplete: Bool = true) {
        self.dirtyListComplete = dirtyListComplete
        self.module = module
        self.generations = generations
        self.serving = serving
        self.aloneSince = aloneSince
        self.dirty = dirty
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(generations)
        writer.append(serving)
        writer.append(aloneSince)
        writer.append(dirtyListComplete)
        writer.append(UInt32(dirty.count))
        for file in dirty {
            writer.append(file.path)
            switch file.regions {
            case .whole:
                writer.append(UInt8(0))
            case .some(let indexes):
                writer.append(UInt8(1))
                writer.append(UInt32(indexes.count))
                for index in indexes { writer.append(index) }
            }
        }
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        generations = try reader.readGenerations("generations")
        serving = try reader.readBool("serving")
        aloneSince = try reader.read(Int64.self, "alone since")
        dirtyListComplete = try reader.readBool("dirty list complete")
        let count = Int(try reader.read(UInt32.self, "dirty file count"))
        guard count <= Self.maximumDirtyFiles else {
            throw reader.invalid("dirty file count", "\(count) exceeds \(Self.maximumDirtyFiles)")
        }
        var files: [DirtyFile] = []
        var regionTotal = 0
        for _ in 0..<count {
            let path = try reader.readPath("dirty path")
            switch try reader.read(UInt8.self, "dirty kind") {
            case 0:
                files.append(DirtyFile(path: path, regions: .whole))
            case 1:
                let regions = Int(try reader.read(UInt32.self, "dirty region count"))
                regionTotal += regions
                guard regionTotal <= Self.maximumDirtyRegions, regions * 8 <= reader.remaining else {
                    throw reader.invalid("dirty region count", "\(regions) regions do not fit")
                }
                var indexes: [UInt64] = []
                indexes.reserveCapacity(regions)
                for _ in 0..<regions {
                    let index = try reader.read(UInt64.self, "dirty region")
                    if let last = indexes.last, index <= last {
                        throw reader.invalid("dirty region", "\(index) after \(last): not increasing")
                    }
                    indexes.append(index)
                }
                files.append(DirtyFile(path: path, regions: .some(indexes)))
            case let other:
                throw reader.invalid("dirty kind", "unknown kind \(other)")
            }
        }
        dirty = files
    }
}

/// `moduleStatusReply`: the peer's own status, answering the `moduleStatus` frame `requestSequence`.
public struct ModuleStatusReply: Hashable, Sendable, PayloadCodable {
    public var requestSequence: UInt64
    public var status: ModuleStatus

    public init(requestSequence: UInt64, status: ModuleStatus) {
        self.requestSequence = requestSequence
        self.status = status
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(requestSequence)
        status.encode(into: &writer)
    }

    init(from reader: inout ByteReader) throws {
        requestSequence = try reader.read(UInt64.self, "request sequence")
        status = try ModuleStatus(from: &reader)
    }
}

/// How a resync finds what differs.
public enum ResyncMethod: UInt8, Sendable {
    /// The source sends what its change map and the target's dirty list name.
    case changeMap = 0
    /// The source sends region checksums; only regions that differ travel.
    case checksum = 1
}

/// `resyncBegin`: the target's copy is about to be made equal to the source's; until the
/// matching `resyncEnd` it is not up to date (the target records that before acknowledging).
public struct ResyncBegin: Hashable, Sendable, PayloadCodable {
    public var module: UInt16
    public var method: ResyncMethod
    public var source: WireGenerations

    public init(module: UInt16, method: ResyncMethod, source: WireGenerations) {
        self.module = module
        self.method = method
        self.source = source
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(method.rawValue)
        writer.append(source)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        let raw = try reader.read(UInt8.self, "method")
        guard let method = ResyncMethod(rawValue: raw) else { throw reader.invalid("method", "unknown method \(raw)") }
        self.method = method
        source = try reader.readGenerations("source generations")
    }
}

/// `resyncEnd`: every difference was sent; the target adopts `generations` and is up to date.
public struct ResyncEnd: Hashable, Sendable, PayloadCodable {
    public var module: UInt16
    public var generations: WireGenerations

    public init(module: UInt16, generations: WireGenerations) {
        self.module = module
        self.generations = generations
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(module)
        writer.append(generations)
    }

    init(from reader: inout ByteReader) throws {
        module = try reader.read(UInt16.self, "module")
        generations = try reader.readGenerations("generations")
    }
}

extension ByteWriter {
    mutating func append(_ generations: WireGenerations) {
        append(generations.current)
        append(generations.bitmap)
        append(UInt8(generations.history.count))
        for id in generations.history { append(id) }
        append(generations.upToDate)
    }
}

extension ByteReader {
    mutating func readGenerations(_ field: String) throws -> WireGenerations {
        let current = try read(UInt64.self, field)
        let bitmap = try read(UInt64.self, field)
        let count = Int(try read(UInt8.self, field))
        guard count <= WireGenerations.maximumHistory else { throw invalid(field, "\(count) history entries") }
        var history: [UInt64] = []
        for _ in 0..<count { history.append(try read(UInt64.self, field)) }
        return WireGenerations(current: current, bitmap: bitmap, history: history, upToDate: try readBool(field))
    }
}

/// `controlRequest` and `controlReply`: an operator's request for the peer's daemon
/// (`clusterctl -H node2 ...`) and its answer, as the control socket's JSON, carried on the
/// authenticated replication connection. A request's `requestSequence` is 0; a reply names the
/// frame it answers.
public struct ControlEnvelope: Hashable, Sendable, PayloadCodable {
    public var requestSequence: UInt64
    public var body: [UInt8]

    /// The largest JSON document carried (a status of many modules fits easily).
    public static let maximumBodyLength = 1 << 20

    public init(requestSequence: UInt64, body: [UInt8]) {
        self.requestSequence = requestSequence
        self.body = body
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(requestSequence)
        writer.appendLongBytes(body)
    }

    init(from reader: inout ByteReader) throws {
        requestSequence = try reader.read(UInt64.self, "request sequence")
        body = Array(try reader.readLongBytes("control body", limit: Self.maximumBodyLength))
    }
}
