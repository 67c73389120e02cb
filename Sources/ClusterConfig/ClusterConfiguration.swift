/// The validated content of one cluster file: the same file on both nodes.
public struct ClusterConfiguration: Equatable, Sendable {
    /// Defaults of the optional top-level settings.
    public enum Defaults {
        public static let heartbeatInterval = Duration.milliseconds(500)
        public static let heartbeatTimeout = Duration.seconds(3)
        public static let ackTimeout = Duration.seconds(3)
        public static let regionSize = 1 << 20
        public static let stateDirectory = "/var/lib/mirror"
    }

    /// The file it was loaded from, as the operator named it (for messages).
    public var file: String
    /// The cluster's name; both nodes and the replication handshake must agree on it.
    public var name: String
    /// Absolute path of the pre-shared key file (see `PresharedKey`).
    public var keyFile: String
    /// Where each node keeps its per-module state (data generations, activity log, change map);
    /// the node's path prefix applies, so two nodes on one machine keep separate states.
    public var stateDirectory: String
    /// How often each node sends a heartbeat on every path.
    public var heartbeatInterval: Duration
    /// Silence on every path for this long means the peer is lost.
    public var heartbeatTimeout: Duration
    /// A replicated operation not acknowledged by the peer within this delay makes the primary go on alone.
    public var ackTimeout: Duration
    /// Bytes per tracked region of a file while the peer is away (a power of two).
    public var regionSize: Int
    /// The arbitrator consulted when the nodes lose each other, if any.
    public var witness: Witness?
    /// Exactly two nodes, in file order.
    public var nodes: [Node]
    /// The modules, in file order.
    public var modules: [Module]

    /// The node called `name`, if it is one of the two.
    public func node(named name: String) -> Node? {
        nodes.first { $0.name == name }
    }

    /// The other node of the pair.
    public func peer(of node: Node) -> Node? {
        nodes.first { $0.name != node.name }
    }
}

/// A third party that decides which node may serve when the nodes lose each other.
public struct Witness: Equatable, Sendable {
    public var address: Endpoint
}
