/// 32 random bytes each side contributes to the handshake; the caller supplies them, so tests
/// are deterministic.
public struct HandshakeNonce: Hashable, Sendable {
    public let bytes: [UInt8]

    public static let length = 32

    /// - Returns: `nil` unless `bytes` holds exactly 32 bytes.
    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        guard bytes.count == HandshakeNonce.length else { return nil }
        self.bytes = Array(bytes)
    }

    /// A fresh nonce from the system's secure random generator.
    public static func random() -> HandshakeNonce {
        var generator = SystemRandomNumberGenerator()
        return HandshakeNonce(bytes: (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &generator) })!
    }
}

/// `hello` (initiator) and `helloReply` (responder): who is speaking, in which cluster, and
/// which modules its configuration holds, in configuration order.
///
/// A module is named in operation frames by its index in this list; both nodes must list the
/// same modules in the same order (the cluster file is the same on both).
public struct Hello: Equatable, Sendable, PayloadCodable {
    public var protocolVersion: UInt8
    public var clusterName: String
    public var nodeName: String
    public var nonce: HandshakeNonce
    public var modules: [String]

    public init(protocolVersion: UInt8 = WireFormat.version, clusterName: String, nodeName: String,
                nonce: HandshakeNonce, modules: [String]) {
        self.protocolVersion = protocolVersion
        self.clusterName = clusterName
        self.nodeName = nodeName
        self.nonce = nonce
        self.modules = modules
    }

    /// Longest cluster, node or module name, in UTF-8 bytes.
    static let maximumNameLength = 255
    /// Most modules one cluster may hold (module indexes are `UInt16`; this keeps hellos small).
    static let maximumModuleCount = 1024

    func encode(into writer: inout ByteWriter) {
        writer.append(protocolVersion)
        writer.appendShortString(clusterName)
        writer.appendShortString(nodeName)
        writer.append(raw: nonce.bytes)
        writer.append(UInt16(modules.count))
        for module in modules { writer.appendShortString(module) }
    }

    init(from reader: inout ByteReader) throws {
        protocolVersion = try reader.read(UInt8.self, "protocol version")
        clusterName = try reader.readShortString("cluster name", limit: Hello.maximumNameLength)
        nodeName = try reader.readShortString("node name", limit: Hello.maximumNameLength)
        nonce = HandshakeNonce(bytes: try reader.readBytes(count: HandshakeNonce.length, "nonce"))!
        let count = Int(try reader.read(UInt16.self, "module count"))
        guard count <= Hello.maximumModuleCount else {
            throw reader.invalid("module count", "\(count) exceeds \(Hello.maximumModuleCount)")
        }
        modules = try (0..<count).map { _ in try reader.readShortString("module name", limit: Hello.maximumNameLength) }
    }
}

/// `proof`: HMAC-SHA256 with the pre-shared key over both hellos and the sender's role.
public struct Proof: Equatable, Sendable, PayloadCodable {
    public var code: [UInt8]

    public init(code: [UInt8]) { self.code = code }

    func encode(into writer: inout ByteWriter) { writer.append(raw: code) }

    init(from reader: inout ByteReader) throws {
        code = Array(try reader.readBytes(count: 32, "code"))
    }
}

/// `refuse`: why the sender ends the handshake; the connection closes after it.
public struct Refuse: Equatable, Sendable, PayloadCodable {
    public var reason: RefusalReason
    public var detail: String

    /// Longest detail text sent, in UTF-8 bytes; longer text is cut at a character boundary.
    static let maximumDetailLength = 1024

    public init(reason: RefusalReason, detail: String) {
        self.reason = reason
        var cut = detail
        while cut.utf8.count > Refuse.maximumDetailLength { cut.removeLast() }
        self.detail = cut
    }

    func encode(into writer: inout ByteWriter) {
        writer.append(reason.rawValue)
        writer.appendShortString(detail)
    }

    init(from reader: inout ByteReader) throws {
        let code = try reader.read(UInt16.self, "reason")
        guard let reason = RefusalReason(rawValue: code) else { throw reader.invalid("reason", "unknown code \(code)") }
        self.reason = reason
        detail = try reader.readShortString("detail", limit: Refuse.maximumDetailLength)
    }
}
