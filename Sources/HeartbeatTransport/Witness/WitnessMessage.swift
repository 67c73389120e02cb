import Crypto
import MirrorCore

/// One datagram between a node and the witness.
///
/// Layout (version 1, big-endian; see docs/heartbeats.md):
///
///     "MWT" 0x01 | type u8 | nonce u64 | challenge u64 | cluster name | module name | node name | body |
///     HMAC-SHA256 tag (32 bytes)
///
/// Types: 1 request (kind u8: 1 serve, 2 release; stamp; serving generation u64; the copy's
/// generations; forced u8), 2 verdict (may serve u8; the request's stamp; serving generation u64),
/// 3 challenge (no body), 4 released (the released stamp). `node` is always the asking node.
/// The tag covers every byte before it, under ``ClusterKeys/witness(presharedKey:)``.
///
/// Freshness without synchronised clocks: a request is decided only when it carries the
/// challenge the witness issued last to that node for that module, within a few seconds, and
/// each challenge is used once; any answer carries the next one. A request with another
/// challenge gets a challenge back (one more round trip). The nonce, new for each question,
/// ties an answer to its question, so an old answer replayed to the node is ignored.
public struct WitnessMessage: Equatable, Sendable {
    public enum Body: Equatable, Sendable {
        case request(WitnessRequest)
        case verdict(WitnessVerdict)
        case challenge
        case released(TickStamp)
    }

    public var nonce: UInt64
    /// In a request: the witness's challenge it answers (0: none yet). In an answer: the next one.
    public var challenge: UInt64
    public var cluster: String
    public var module: String
    /// The asking node (for a request, `WitnessRequest.node`).
    public var node: String
    public var body: Body

    public init(nonce: UInt64, challenge: UInt64, cluster: String, module: String, node: String, body: Body) {
        self.nonce = nonce
        self.challenge = challenge
        self.cluster = cluster
        self.module = module
        self.node = node
        self.body = body
    }

    static let magic: [UInt8] = Array("MWT".utf8)
    public static let version: UInt8 = 1
    public static let maximumSize = 1472
    static let minimumSize = 4 + 1 + 8 + 8 + 2 + 2 + 2 + DatagramTag.size

    var typeCode: UInt8 {
        switch body {
        case .request: return 1
        case .verdict: return 2
        case .challenge: return 3
        case .released: return 4
        }
    }
}

/// Encodes and decodes witness datagrams under the key derived from the cluster's pre-shared key.
public struct WitnessCodec: @unchecked Sendable {
    /// Immutable after init (SymmetricKey is not marked Sendable).
    let key: SymmetricKey

    public init(presharedKey: [UInt8]) {
        key = ClusterKeys.witness(presharedKey: presharedKey)
    }

    /// - Throws: ``WireError`` when a name is longer than 255 bytes.
    public func encode(_ message: WitnessMessage) throws -> [UInt8] {
        var writer = WireWriter()
        writer.append(raw: WitnessMessage.magic)
        writer.append(WitnessMessage.version)
        writer.append(message.typeCode)
        writer.append(message.nonce)
        writer.append(message.challenge)
        try writer.appendName(message.cluster, "cluster")
        try writer.appendName(message.module, "module")
        try writer.appendName(message.node, "node")
        switch message.body {
        case .request(let request):
            writer.append(UInt8(request.kind == .serve ? 1 : 2))
            writer.append(request.stamp)
            writer.append(request.servingGeneration.rawValue)
            writer.append(request.data)
            writer.append(request.forced)
        case .verdict(let verdict):
            writer.append(verdict.mayServe)
            writer.append(verdict.request)
            writer.append(verdict.servingGeneration.rawValue)
        case .challenge:
            break
        case .released(let stamp):
            writer.append(stamp)
        }
        DatagramTag.append(to: &writer, key: key)
        return writer.bytes
    }

    public func decode(_ bytes: ArraySlice<UInt8>) -> Result<WitnessMessage, WitnessDropReason> {
        guard bytes.count <= WitnessMessage.maximumSize else { return .failure(.oversized(bytes.count)) }
        guard bytes.count >= WitnessMessage.minimumSize else { return .failure(.truncated(bytes.count)) }
        guard bytes.prefix(3).elementsEqual(WitnessMessage.magic) else { return .failure(.notAWitnessMessage) }
        let version = bytes[bytes.startIndex + 3]
        guard version == WitnessMessage.version else { return .failure(.unsupportedVersion(version)) }
        guard DatagramTag.isValid(bytes, key: key) else { return .failure(.unauthenticated) }
        do {
            return .success(try Self.parse(bytes.dropLast(DatagramTag.size)))
        } catch {
            return .failure(.malformed("\(error)"))
        }
    }

    private static func parse(_ body: ArraySlice<UInt8>) throws -> WitnessMessage {
        var reader = WireReader(body)
        _ = try reader.readBytes(4, "magic")
        let type = try reader.read(UInt8.self, "type")
        let nonce = try reader.read(UInt64.self, "nonce")
        let challenge = try reader.read(UInt64.self, "challenge")
        let cluster = try reader.readName("cluster")
        let module = try reader.readName("module")
        let node = try reader.readName("node")
        let content: WitnessMessage.Body
        switch type {
        case 1:
            let kind: WitnessRequestKind
            switch try reader.read(UInt8.self, "kind") {
            case 1: kind = .serve
            case 2: kind = .release
            case let other: throw WireError.invalid("kind", "unknown request kind \(other)")
            }
            let stamp = try reader.readStamp("stamp")
            let serving = GenerationID(try reader.read(UInt64.self, "serving generation"))
            let data = try reader.readGenerations("data")
            let forced = try reader.readBool("forced")
            content = .request(WitnessRequest(kind: kind, node: node, stamp: stamp, servingGeneration: serving, data: data, forced: forced))
        case 2:
            let mayServe = try reader.readBool("may serve")
            let stamp = try reader.readStamp("request")
            let serving = GenerationID(try reader.read(UInt64.self, "serving generation"))
            content = .verdict(WitnessVerdict(mayServe: mayServe, request: stamp, servingGeneration: serving))
        case 3:
            content = .challenge
        case 4:
            content = .released(try reader.readStamp("released"))
        default:
            throw WireError.invalid("type", "unknown message type \(type)")
        }
        try reader.expectEnd("the message")
        return WitnessMessage(nonce: nonce, challenge: challenge, cluster: cluster, module: module, node: node, body: content)
    }
}

/// Why a witness datagram was dropped; each reads as the end of one log line.
public enum WitnessDropReason: Error, Equatable, Sendable, CustomStringConvertible {
    case oversized(Int)
    case truncated(Int)
    case notAWitnessMessage
    case unsupportedVersion(UInt8)
    case unauthenticated
    case malformed(String)
    case wrongCluster(String)
    case unknownNode(String)
    case unknownModule(String)
    /// An answer sent to the witness, or a request sent to a node (reflected).
    case unexpected(String)

    public var category: String {
        switch self {
        case .oversized: return "oversized"
        case .truncated: return "truncated"
        case .notAWitnessMessage: return "not-a-witness-message"
        case .unsupportedVersion: return "unsupported-version"
        case .unauthenticated: return "unauthenticated"
        case .malformed: return "malformed"
        case .wrongCluster: return "wrong-cluster"
        case .unknownNode: return "unknown-node"
        case .unknownModule: return "unknown-module"
        case .unexpected: return "unexpected"
        }
    }

    public var description: String {
        switch self {
        case .oversized(let size): return "oversized: \(size) bytes, at most \(WitnessMessage.maximumSize)"
        case .truncated(let size): return "truncated: \(size) bytes, a witness message has at least \(WitnessMessage.minimumSize)"
        case .notAWitnessMessage: return "not a mirror witness message (no MWT header)"
        case .unsupportedVersion(let version): return "witness protocol version \(version), this side speaks \(WitnessMessage.version)"
        case .unauthenticated: return "not authenticated by the cluster key: a different key_file, or forged"
        case .malformed(let what): return "malformed: \(what)"
        case .wrongCluster(let name): return "from cluster \"\(name)\", not this one (two clusters share a key file?)"
        case .unknownNode(let name): return "from node \"\(name)\", which is not a node of this cluster"
        case .unknownModule(let name): return "about module \"\(name)\", which is not in the cluster file (same file everywhere?)"
        case .unexpected(let what): return "unexpected \(what)"
        }
    }
}
