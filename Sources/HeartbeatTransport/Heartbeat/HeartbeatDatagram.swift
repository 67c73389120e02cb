import Crypto
import MirrorCore

/// One module's heartbeat as it travels; `heartbeat.from` is the datagram's sender.
public struct ModuleHeartbeat: Equatable, Sendable {
    public var module: String
    public var heartbeat: Heartbeat

    public init(module: String, heartbeat: Heartbeat) {
        self.module = module
        self.heartbeat = heartbeat
    }
}

/// One heartbeat datagram: one node's heartbeats for its modules, sent on one path.
///
/// Layout (version 1, big-endian; see docs/heartbeats.md):
///
///     "MHB" 0x01 | path u8 | incarnation u64 | sequence u64 | cluster name | sender name |
///     module count u16 | modules... | HMAC-SHA256 tag (32 bytes)
///
/// Names are a length byte and UTF-8. Each module: name, state u8, flags u8 (1 generations,
/// 2 may serve, 4 resync session, 8 echo), the generations if flagged, the stamp, the resync
/// session and the echo if flagged. The tag covers every byte before it, under
/// ``ClusterKeys/heartbeat(presharedKey:)``.
public struct HeartbeatDatagram: Equatable, Sendable {
    /// The index of the path it is sent on (paths are paired by position in the cluster file).
    public var path: UInt8
    /// The sending channel's incarnation: set at its start, greater at each restart (see ``Incarnation``).
    public var incarnation: UInt64
    /// Strictly increasing within an incarnation and a path.
    public var sequence: UInt64
    public var cluster: String
    public var sender: String
    public var modules: [ModuleHeartbeat]

    public init(path: UInt8, incarnation: UInt64, sequence: UInt64, cluster: String, sender: String, modules: [ModuleHeartbeat]) {
        self.path = path
        self.incarnation = incarnation
        self.sequence = sequence
        self.cluster = cluster
        self.sender = sender
        self.modules = modules
    }

    static let magic: [UInt8] = Array("MHB".utf8)
    public static let version: UInt8 = 1
    /// The largest datagram sent or accepted: one Ethernet frame's UDP payload, so that a heartbeat
    /// is never fragmented. A node with many modules sends several datagrams.
    public static let maximumSize = 1472
    /// The smallest possible datagram: header, two one-byte names, no module, tag.
    static let minimumSize = 4 + 1 + 8 + 8 + 2 + 2 + 2 + DatagramTag.size
    static let flagGenerations: UInt8 = 1, flagMayServe: UInt8 = 2, flagResyncSession: UInt8 = 4, flagEcho: UInt8 = 8
}

/// Encodes and decodes heartbeat datagrams under the key derived from the cluster's pre-shared key.
public struct HeartbeatCodec: @unchecked Sendable {
    /// Immutable after init (SymmetricKey is not marked Sendable).
    let key: SymmetricKey

    public init(presharedKey: [UInt8]) {
        key = ClusterKeys.heartbeat(presharedKey: presharedKey)
    }

    /// The datagram's bytes, tag included.
    /// - Throws: ``WireError`` when a name is longer than 255 bytes or there are more than 65535 modules.
    public func encode(_ datagram: HeartbeatDatagram) throws -> [UInt8] {
        var writer = Self.header(datagram)
        try writer.appendName(datagram.cluster, "cluster")
        try writer.appendName(datagram.sender, "sender")
        guard datagram.modules.count <= Int(UInt16.max) else { throw WireError.tooLong("modules", length: datagram.modules.count) }
        writer.append(UInt16(datagram.modules.count))
        for entry in datagram.modules { try Self.append(entry, to: &writer) }
        DatagramTag.append(to: &writer, key: key)
        return writer.bytes
    }

    /// The encoded size of one module's entry.
    static func encodedSize(_ entry: ModuleHeartbeat) throws -> Int {
        var writer = WireWriter()
        try append(entry, to: &writer)
        return writer.count
    }

    /// The encoded size of a datagram's header, tag included, without modules.
    static func overhead(cluster: String, sender: String) -> Int {
        minimumSizeWithoutNames + cluster.utf8.count + sender.utf8.count
    }

    private static let minimumSizeWithoutNames = HeartbeatDatagram.minimumSize - 2

    private static func header(_ datagram: HeartbeatDatagram) -> WireWriter {
        var writer = WireWriter()
        writer.append(raw: HeartbeatDatagram.magic)
        writer.append(HeartbeatDatagram.version)
        writer.append(datagram.path)
        writer.append(datagram.incarnation)
        writer.append(datagram.sequence)
        return writer
    }

    private static func append(_ entry: ModuleHeartbeat, to writer: inout WireWriter) throws {
        let announcement = entry.heartbeat.announcement
        try writer.appendName(entry.module, "module")
        writer.append(announcement.state)
        var flags: UInt8 = 0
        if announcement.generations != nil { flags |= HeartbeatDatagram.flagGenerations }
        if announcement.mayServe { flags |= HeartbeatDatagram.flagMayServe }
        if announcement.resyncSession != nil { flags |= HeartbeatDatagram.flagResyncSession }
        if entry.heartbeat.echo != nil { flags |= HeartbeatDatagram.flagEcho }
        writer.append(flags)
        if let generations = announcement.generations { writer.append(generations) }
        writer.append(entry.heartbeat.stamp)
        if let session = announcement.resyncSession { writer.append(session) }
        if let echo = entry.heartbeat.echo { writer.append(echo) }
    }

    /// The datagram in `bytes`, or why it must be dropped: size, magic and version first, then
    /// the tag (nothing else is parsed before it is checked), then the fields.
    public func decode(_ bytes: ArraySlice<UInt8>) -> Result<HeartbeatDatagram, HeartbeatDropReason> {
        guard bytes.count <= HeartbeatDatagram.maximumSize else { return .failure(.oversized(bytes.count)) }
        guard bytes.count >= HeartbeatDatagram.minimumSize else { return .failure(.truncated(bytes.count)) }
        guard bytes.prefix(3).elementsEqual(HeartbeatDatagram.magic) else { return .failure(.notAHeartbeat) }
        let version = bytes[bytes.startIndex + 3]
        guard version == HeartbeatDatagram.version else { return .failure(.unsupportedVersion(version)) }
        guard DatagramTag.isValid(bytes, key: key) else {
            let claim = Self.claimedIdentity(bytes)
            return .failure(.unauthenticated(claimedCluster: claim?.cluster, claimedSender: claim?.sender))
        }
        do {
            return .success(try Self.parse(bytes.dropLast(DatagramTag.size)))
        } catch let error as WireError {
            return .failure(.malformed(error.description))
        } catch {
            return .failure(.malformed("\(error)"))
        }
    }

    private static func parse(_ body: ArraySlice<UInt8>) throws -> HeartbeatDatagram {
        var reader = WireReader(body)
        _ = try reader.readBytes(4, "magic")
        let path = try reader.read(UInt8.self, "path")
        let incarnation = try reader.read(UInt64.self, "incarnation")
        let sequence = try reader.read(UInt64.self, "sequence")
        let cluster = try reader.readName("cluster")
        let sender = try reader.readName("sender")
        let count = Int(try reader.read(UInt16.self, "module count"))
        var modules: [ModuleHeartbeat] = []
        for index in 0..<count {
            modules.append(try readModule(&reader, sender: sender, index: index))
        }
        try reader.expectEnd(count == 0 ? "the module count" : "module[\(count - 1)]")
        return HeartbeatDatagram(path: path, incarnation: incarnation, sequence: sequence, cluster: cluster, sender: sender,
                                 modules: modules)
    }

    private static func readModule(_ reader: inout WireReader, sender: String, index: Int) throws -> ModuleHeartbeat {
        let field = "module[\(index)]"
        let name = try reader.readName("\(field).name")
        let state = try reader.readState("\(field).state")
        let flags = try reader.read(UInt8.self, "\(field).flags")
        guard flags & ~0x0F == 0 else { throw WireError.invalid("\(field).flags", "unknown bits \(flags)") }
        let generations = flags & HeartbeatDatagram.flagGenerations != 0 ? try reader.readGenerations("\(field).generations") : nil
        let stamp = try reader.readStamp("\(field).stamp")
        let session = flags & HeartbeatDatagram.flagResyncSession != 0 ? try reader.readStamp("\(field).resync session") : nil
        let echo = flags & HeartbeatDatagram.flagEcho != 0 ? try reader.readStamp("\(field).echo") : nil
        let announcement = Announcement(state: state, generations: generations, mayServe: flags & HeartbeatDatagram.flagMayServe != 0,
                                        resyncSession: session)
        return ModuleHeartbeat(module: name, heartbeat: Heartbeat(from: sender, announcement: announcement, stamp: stamp, echo: echo))
    }

    /// The cluster and sender an unauthenticated datagram claims, for a clearer log line only.
    private static func claimedIdentity(_ bytes: ArraySlice<UInt8>) -> (cluster: String, sender: String)? {
        var reader = WireReader(bytes.dropLast(DatagramTag.size))
        guard (try? reader.readBytes(4 + 1 + 8 + 8, "header")) != nil,
              let cluster = try? reader.readName("cluster"), let sender = try? reader.readName("sender") else { return nil }
        return (String(cluster.prefix(64)), String(sender.prefix(64)))
    }
}

/// Why a received heartbeat datagram was dropped; each reads as the end of one log line.
public enum HeartbeatDropReason: Error, Equatable, Sendable, CustomStringConvertible {
    case oversized(Int)
    case truncated(Int)
    case notAHeartbeat
    case unsupportedVersion(UInt8)
    case unauthenticated(claimedCluster: String?, claimedSender: String?)
    case malformed(String)
    case wrongCluster(String)
    case unknownNode(String)
    /// Signed with our key and name: a reflected datagram, or both nodes run under the same name.
    case fromThisNode(String)
    case wrongPath(sentOn: Int, receivedOn: Int)
    case replayed(incarnation: UInt64, sequence: UInt64, newest: UInt64)
    case olderIncarnation(UInt64, current: UInt64)

    /// A stable short name: counters and the rate limit of log lines go by it.
    public var category: String {
        switch self {
        case .oversized: return "oversized"
        case .truncated: return "truncated"
        case .notAHeartbeat: return "not-a-heartbeat"
        case .unsupportedVersion: return "unsupported-version"
        case .unauthenticated: return "unauthenticated"
        case .malformed: return "malformed"
        case .wrongCluster: return "wrong-cluster"
        case .unknownNode: return "unknown-node"
        case .fromThisNode: return "from-this-node"
        case .wrongPath: return "wrong-path"
        case .replayed: return "replayed"
        case .olderIncarnation: return "older-incarnation"
        }
    }

    public var description: String {
        switch self {
        case .oversized(let size):
            return "oversized: \(size) bytes, at most \(HeartbeatDatagram.maximumSize)"
        case .truncated(let size):
            return "truncated: \(size) bytes, a heartbeat has at least \(HeartbeatDatagram.minimumSize)"
        case .notAHeartbeat:
            return "not a mirror heartbeat (no MHB header)"
        case .unsupportedVersion(let version):
            return "heartbeat version \(version), this node speaks \(HeartbeatDatagram.version)"
        case .unauthenticated(let cluster, let sender):
            let claim = cluster.map { " (claims cluster \"\($0)\", node \"\(sender ?? "?")\")" } ?? ""
            return "not authenticated by the cluster key\(claim): a different key_file, or forged"
        case .malformed(let what):
            return "malformed: \(what)"
        case .wrongCluster(let name):
            return "from cluster \"\(name)\", not this one (two clusters share a key file?)"
        case .unknownNode(let name):
            return "from node \"\(name)\", which is not this node's peer"
        case .fromThisNode(let name):
            return "from node \"\(name)\", this node itself: reflected back, or the peer runs under the same name (--node)"
        case .wrongPath(let sent, let received):
            return "sent on path \(sent) but received on path \(received) (heartbeat addresses are paired by position)"
        case .replayed(let incarnation, let sequence, let newest):
            return "replayed or reordered: sequence \(sequence) of incarnation \(String(incarnation, radix: 16)), "
                + "\(newest) already accepted"
        case .olderIncarnation(let incarnation, let current):
            return "from incarnation \(String(incarnation, radix: 16)), older than the current \(String(current, radix: 16)) "
                + "(replayed, or the peer restarted with its clock set back: accepted once the current one is silent)"
        }
    }
}
