/// One of the two nodes of the cluster.
public struct Node: Equatable, Sendable {
    /// The node's name, given to `mirror run --node` and shown in states such as (node1-PRIM, node2-SECOND).
    public var name: String
    /// Where the node accepts the peer's replication connection; the first reachable one is used.
    public var replicationAddresses: [Endpoint]
    /// Where the node listens for UDP heartbeats: one path per address, one live path keeps the cluster together.
    /// Defaults to each replication address's host, on the replication port + 1.
    public var heartbeatAddresses: [Endpoint]
    /// Prepended on this node to every replicated directory and pid file, so that two nodes can run on one machine
    /// with separate copies; nil on a real node.
    public var pathPrefix: String?
    /// Where the node answers load balancers' health checks (`GET /health/MODULE`: 200 where the
    /// module is PRIM or ALONE); nil: no health endpoint.
    public var healthAddress: Endpoint?

    public init(name: String, replicationAddresses: [Endpoint], heartbeatAddresses: [Endpoint], pathPrefix: String?,
                healthAddress: Endpoint? = nil) {
        self.name = name
        self.replicationAddresses = replicationAddresses
        self.heartbeatAddresses = heartbeatAddresses
        self.pathPrefix = pathPrefix
        self.healthAddress = healthAddress
    }

    /// Where `path` (a replicated directory or pid file as written in the file) lives on this node.
    public func localPath(_ path: String) -> String {
        guard let pathPrefix else { return path }
        return pathPrefix + path
    }
}
