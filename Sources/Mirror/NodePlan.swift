import ClusterConfig
import ReplProtocol
import ReplTransport

/// One replicated directory of one module as `mirror run` runs it: its own mount, stream,
/// data generations and journal (see docs/replication.md, "Units").
struct UnitPlan {
    /// The unit's index on the stream (its position in the handshake's list).
    let index: UInt16
    let moduleName: String
    /// "AM" for a module's only directory, "AM[1]" for its second one, in log lines.
    let name: String
    /// The directory on this node (the node's path prefix applied).
    let directory: String
    /// This node's state directory for the unit (generations, journal); path prefix applied.
    let stateDirectory: String
}

/// What `mirror run` needs of the cluster file for one node: every module's directories on
/// this node, where to listen or connect, and the handshake identity.
struct NodePlan {
    let units: [UnitPlan]
    /// Where this node accepts the peer's replication connections (its first address).
    let listenAddress: NetworkAddress
    /// The peer's replication addresses, in the order they are tried.
    let peerAddresses: [NetworkAddress]
    let handshake: HandshakeConfiguration
    let acknowledgementTimeout: Duration
    let regionSize: Int
    let nodeName: String
    let peerName: String
    /// The whole cluster file, for the cluster daemon (modules, heartbeats, witness).
    let cluster: ClusterConfiguration
    let presharedKey: [UInt8]

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
        guard !cluster.modules.isEmpty else { throw Failure(message: "\(config): no module to replicate") }
        guard let listen = node.replicationAddresses.first else {
            throw Failure(message: "\(config): node \"\(node.name)\" has no replication address")
        }
        var units: [UnitPlan] = []
        let stateRoot = node.localPath(cluster.stateDirectory)
        for module in cluster.modules {
            for (position, directory) in module.directories.enumerated() {
                units.append(UnitPlan(index: UInt16(units.count), moduleName: module.name,
                                      name: module.directories.count == 1 ? module.name : "\(module.name)[\(position)]",
                                      directory: node.localPath(directory),
                                      stateDirectory: stateRoot + "/" + module.name + "/\(position)"))
            }
        }
        let key: [UInt8]
        switch PresharedKey.read(cluster.keyFile) {
        case .success(let bytes): key = bytes
        case .failure(let problem): throw Failure(message: "\(config): \(problem)")
        }
        let handshake: HandshakeConfiguration
        do {
            handshake = try HandshakeConfiguration(clusterName: cluster.name, nodeName: node.name, knownPeers: [peer.name],
                                                   modules: units.map(\.name), preSharedKey: key)
        } catch {
            throw Failure(message: "\(config): \(error)")
        }
        return NodePlan(units: units, listenAddress: NetworkAddress(listen),
                        peerAddresses: peer.replicationAddresses.map(NetworkAddress.init),
                        handshake: handshake, acknowledgementTimeout: cluster.ackTimeout,
                        regionSize: cluster.regionSize, nodeName: node.name, peerName: peer.name, cluster: cluster,
                        presharedKey: key)
    }
}

extension NetworkAddress {
    init(_ endpoint: Endpoint) { self.init(host: endpoint.host, port: endpoint.port) }
}
