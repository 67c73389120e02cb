import Crypto

/// What one node brings to a handshake: its identity, the peers it accepts, its modules and the
/// cluster's pre-shared key.
public struct HandshakeConfiguration {
    public let clusterName: String
    public let nodeName: String
    /// Node names this node accepts as its peer.
    public let knownPeers: Set<String>
    /// Module names in configuration order; operation frames name a module by its index here.
    public let modules: [String]
    let preSharedKey: SymmetricKey

    /// Shortest pre-shared key accepted, in bytes.
    public static let minimumKeyLength = 16

    /// Throws ``ConfigurationError`` if a name is empty or longer than 255 bytes, if there are
    /// more than 1024 modules, or if the key is shorter than ``minimumKeyLength``.
    public init(clusterName: String, nodeName: String, knownPeers: Set<String>, modules: [String],
                preSharedKey: [UInt8]) throws {
        let names = [("cluster name", clusterName), ("node name", nodeName)] + modules.map { ("module name", $0) }
        for (what, name) in names {
            guard !name.isEmpty, name.utf8.count <= Hello.maximumNameLength else {
                throw ConfigurationError("\(what) '\(name)' must be 1 to \(Hello.maximumNameLength) bytes long")
            }
        }
        guard modules.count <= Hello.maximumModuleCount else {
            throw ConfigurationError("\(modules.count) modules exceed the limit of \(Hello.maximumModuleCount)")
        }
        guard preSharedKey.count >= HandshakeConfiguration.minimumKeyLength else {
            throw ConfigurationError("pre-shared key of \(preSharedKey.count) bytes is shorter than "
                + "\(HandshakeConfiguration.minimumKeyLength) bytes")
        }
        self.clusterName = clusterName
        self.nodeName = nodeName
        self.knownPeers = knownPeers
        self.modules = modules
        self.preSharedKey = SymmetricKey(data: preSharedKey)
    }
}

/// A handshake configuration the protocol cannot carry.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}
