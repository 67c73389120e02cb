import ClusterConfig
import ReplProtocol
import ReplTransport

/// What `mirror run` needs of the cluster file for one node: the first module's directory on
/// this node, where to listen or connect, and the handshake identity.
struct NodePlan {
    let moduleName: String
    /// The module's directory on this node (the node's path prefix applied).
    let directory: String
    /// Where this node accepts the peer's replication connection (its first address).
    let listenAddress: NetworkAddress
    /// The peer's replication addresses, in the order they are tried.
    let peerAddresses: [NetworkAddress]
    let handshake: HandshakeConfiguration
    let acknowledgementTimeout: Duration
    /// This node's state directory for the module (generations, journal); path prefix applied.
    let stateDirectory: String
    let regionSize: Int
    let nodeName: String
    let peerName: String
    /// Modules after the first, which this version does not run.
    let ignoredModules: [String]

    /// Loads and checks the cluster file (with this node's local checks).
    /// - Throws: ``Failure`` with every problem, one per line.
    static func load(config: String, node nodeName: String) throws -> NodePlan {
        let cluster: ClusterConfiguration
        do {
            cluster = try ClusterConfiguration.load(path: config)
            try cluster.checkNode(named: nodeName)
        } catch let errors as ConfigurationErrors {
            throw Failure(message: errors.issues.map { "\($0)" }.joined(separator: "\n"))
        }
        guard let node = cluster.node(named: nodeName), let peer = cluster.peer(of: node) else {
            throw Failure(message: "\(config): node \"\(nodeName)\" has no peer")
        }
        guard let module = cluster.modules.first else { throw Failure(message: "\(config): no module to replicate") }
        guard module.directories.count == 1 else {
            throw Failure(message: "\(config): module \"\(module.name)\" has \(module.directories.count) directories; "
                + "this version replicates exactly one directory per module")
        }
        guard let listen = node.replicationAddresses.first else {
            throw Failure(message: "\(config): node \"\(node.name)\" has no replication address")
        }
        let key: [UInt8]
        switch PresharedKey.read(cluster.keyFile) {
        case .success(let bytes): key = bytes
        case .failure(let problem): throw Failure(message: "\(config): \(problem)")
        }
        let handshake: HandshakeConfiguration
        do {
            handshake = try HandshakeConfiguration(clusterName: cluster.name, nodeName: node.name, knownPeers: [peer.name],
                                                   modules: [module.name], preSharedKey: key)
        } catch {
            throw Failure(message: "\(config): \(error)")
        }
        return NodePlan(moduleName: module.name, directory: node.localPath(module.directories[0]),
                        listenAddress: NetworkAddress(listen),
                        peerAddresses: peer.replicationAddresses.map(NetworkAddress.init),
                        handshake: handshake, acknowledgementTimeout: cluster.ackTimeout,
                        stateDirectory: node.localPath(cluster.stateDirectory) + "/" + module.name,
                        regionSize: cluster.regionSize, nodeName: node.name, peerName: peer.name,
                        ignoredModules: cluster.modules.dropFirst().map(\.name))
    }
}

extension NetworkAddress {
    init(_ endpoint: Endpoint) { self.init(host: endpoint.host, port: endpoint.port) }
}
