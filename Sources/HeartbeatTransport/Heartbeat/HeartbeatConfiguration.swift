import ClusterConfig
import ReplTransport

/// One heartbeat path: this node's address on it and the peer's (paired by position in the cluster file).
public struct HeartbeatPath: Equatable, Sendable, CustomStringConvertible {
    public var local: NetworkAddress
    public var peer: NetworkAddress

    public init(local: NetworkAddress, peer: NetworkAddress) {
        self.local = local
        self.peer = peer
    }

    public var description: String { "\(local) <-> \(peer)" }
}

/// What a ``HeartbeatChannel`` needs: who we are, who the peer is, the paths and the key.
public struct HeartbeatConfiguration: Equatable, Sendable {
    public var clusterName: String
    public var nodeName: String
    public var peerName: String
    /// At least one, at most 255.
    public var paths: [HeartbeatPath]
    /// The cluster's pre-shared key (the heartbeat key is derived from it).
    public var presharedKey: [UInt8]
    /// The modules whose heartbeats are delivered; others are dropped with a warning. Nil: all.
    public var modules: Set<String>?
    /// How often the daemon sends (the channel sends only when asked); for status and docs.
    public var interval: Duration
    /// A path silent this long counts as down; also how long the peer's incarnation must be silent
    /// before an older one is accepted again (see ``PeerSequence``).
    public var timeout: Duration
    /// At most one warning per kind of dropped datagram within this delay.
    public var dropLogInterval: Duration

    public init(clusterName: String, nodeName: String, peerName: String, paths: [HeartbeatPath], presharedKey: [UInt8],
                modules: Set<String>? = nil, interval: Duration = .seconds(1), timeout: Duration = .seconds(5),
                dropLogInterval: Duration = .seconds(10)) {
        self.clusterName = clusterName
        self.nodeName = nodeName
        self.peerName = peerName
        self.paths = paths
        self.presharedKey = presharedKey
        self.modules = modules
        self.interval = interval
        self.timeout = timeout
        self.dropLogInterval = dropLogInterval
    }

    /// The configuration of node `node` from the cluster file: path i joins the i-th heartbeat
    /// address of each node; interval, timeout and modules as in the file.
    /// - Throws: ``HeartbeatConfigurationError`` when the node is unknown or the paths do not pair up.
    public init(cluster: ClusterConfiguration, node nodeName: String, presharedKey: [UInt8]) throws {
        guard let node = cluster.node(named: nodeName), let peer = cluster.peer(of: node) else {
            throw HeartbeatConfigurationError("\(cluster.file): \"\(nodeName)\" is not a node of cluster \"\(cluster.name)\"")
        }
        guard node.heartbeatAddresses.count == peer.heartbeatAddresses.count else {
            throw HeartbeatConfigurationError("\(cluster.file): node \"\(node.name)\" has \(node.heartbeatAddresses.count) heartbeat "
                + "addresses and node \"\(peer.name)\" \(peer.heartbeatAddresses.count): heartbeat paths are paired by position, "
                + "give both nodes the same number")
        }
        let paths = zip(node.heartbeatAddresses, peer.heartbeatAddresses).map {
            HeartbeatPath(local: NetworkAddress(host: $0.host, port: $0.port), peer: NetworkAddress(host: $1.host, port: $1.port))
        }
        self.init(clusterName: cluster.name, nodeName: node.name, peerName: peer.name, paths: paths, presharedKey: presharedKey,
                  modules: Set(cluster.modules.map(\.name)), interval: cluster.heartbeatInterval, timeout: cluster.heartbeatTimeout)
        try check()
    }

    func check() throws {
        guard (1...Int(UInt8.max)).contains(paths.count) else {
            throw HeartbeatConfigurationError("heartbeats need 1 to 255 paths, \(paths.count) given")
        }
        guard nodeName != peerName else { throw HeartbeatConfigurationError("the node and its peer are both \"\(nodeName)\"") }
        for name in [clusterName, nodeName, peerName] where name.utf8.isEmpty || name.utf8.count > 255 {
            throw HeartbeatConfigurationError("name \"\(name)\" must be 1 to 255 bytes long")
        }
    }
}

/// Why a heartbeat channel or witness cannot be set up from the configuration; one line.
public struct HeartbeatConfigurationError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
