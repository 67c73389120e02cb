import TOMLKit

/// Reads the `[[node]]` tables.
enum NodeDecoder {
    static let acceptedKeys = ["name", "replication", "heartbeat", "path_prefix", "health"]
    static let requiredCount = 2

    /// The nodes whose name is valid; every problem is logged.
    static func decode(_ tables: [TOMLTable], log: IssueLog) -> [Decoded<Node>] {
        if tables.count > requiredCount {
            log.add("[[node]] \(requiredCount + 1)", "a cluster has exactly two nodes, found \(tables.count)")
        } else if tables.count < requiredCount {
            log.add("", "a cluster has exactly two nodes ([[node]] tables), found \(tables.count)")
        }
        return tables.enumerated().compactMap { index, table in
            decodeNode(table, ordinal: index + 1, log: log)
        }
    }

    private static func decodeNode(_ table: TOMLTable, ordinal: Int, log: IssueLog) -> Decoded<Node>? {
        let position = "[[node]] \(ordinal)"
        var reader = TableReader(table: table, context: position, log: log)
        let name = reader.readName(allowDots: true)
        if let name { reader.context = "node \"\(name)\"" }
        reader.refuseUnknownKeys(accepted: acceptedKeys)
        let replication = reader.readEndpoints("replication", required: true) ?? []
        let heartbeat = reader.readEndpoints("heartbeat", required: false) ?? defaultHeartbeat(replication, reader)
        let pathPrefix = reader.readPath("path_prefix", required: false)
        let health = reader.readEndpoint("health", required: false)
        guard let name else { return nil }
        let node = Node(name: name, replicationAddresses: replication, heartbeatAddresses: heartbeat, pathPrefix: pathPrefix,
                        healthAddress: health)
        return Decoded(value: node, context: reader.context, position: position)
    }

    /// One heartbeat path per replication address: same host, replication port + 1.
    private static func defaultHeartbeat(_ replication: [Endpoint], _ reader: TableReader) -> [Endpoint] {
        replication.compactMap { endpoint in
            guard endpoint.port < UInt16.max else {
                reader.report("replication address \(endpoint) has no next port for the default heartbeat address: "
                    + "give heartbeat = [\"host:port\", ...]")
                return nil
            }
            return Endpoint(host: endpoint.host, port: endpoint.port + 1)
        }
    }
}
