import TOMLKit

/// Turns the top level of a parsed cluster file into a `ClusterConfiguration`, logging every problem.
enum ClusterDecoder {
    static let acceptedKeys = [
        "cluster", "key_file", "state_dir", "heartbeat_interval", "heartbeat_timeout", "ack_timeout", "region_size",
        "witness", "node", "module",
    ]
    static let regionSizes = 4096...(1 << 30)

    /// The configuration, or nil when a required part is missing; any problem is in `log`, which the caller checks.
    static func decode(_ root: TOMLTable, file: String, log: IssueLog) -> ClusterConfiguration? {
        let reader = TableReader(table: root, context: "", log: log)
        reader.refuseUnknownKeys(accepted: acceptedKeys)
        let name = reader.readName("cluster")
        let keyFile = reader.readPath("key_file", required: true)
        let stateDirectory = reader.readPath("state_dir", required: false) ?? ClusterConfiguration.Defaults.stateDirectory
        let defaults = ClusterConfiguration.Defaults.self
        let heartbeatInterval = reader.readSeconds("heartbeat_interval", default: defaults.heartbeatInterval)
        let heartbeatTimeout = reader.readSeconds("heartbeat_timeout", default: defaults.heartbeatTimeout)
        if heartbeatTimeout <= heartbeatInterval {
            reader.report("heartbeat_timeout (\(heartbeatTimeout.secondsText) s) must be greater than heartbeat_interval "
                + "(\(heartbeatInterval.secondsText) s): several heartbeats must be missed before the peer is declared lost")
        }
        let ackTimeout = reader.readSeconds("ack_timeout", default: defaults.ackTimeout)
        let regionSize = readRegionSize(reader)
        let witness = reader.readTable("witness").flatMap { decodeWitness($0, log: log) }
        let nodes = NodeDecoder.decode(reader.readTables("node"), log: log)
        let modules = ModuleDecoder.decode(reader.readTables("module"), log: log)
        ClusterRules.check(nodes: nodes, modules: modules, log: log)
        guard let name, let keyFile else { return nil }
        return ClusterConfiguration(
            file: file, name: name, keyFile: keyFile, stateDirectory: stateDirectory,
            heartbeatInterval: heartbeatInterval, heartbeatTimeout: heartbeatTimeout, ackTimeout: ackTimeout,
            regionSize: regionSize, witness: witness, nodes: nodes.map(\.value), modules: modules.map(\.value)
        )
    }

    private static func readRegionSize(_ reader: TableReader) -> Int {
        let expected = "a power of two from \(regionSizes.lowerBound) to \(regionSizes.upperBound) bytes (1048576 is 1 MiB)"
        return reader.read("region_size", required: false, expected: expected) { value in
            value.int.flatMap { regionSizes.contains($0) && $0 & ($0 - 1) == 0 ? $0 : nil }
        } ?? ClusterConfiguration.Defaults.regionSize
    }

    private static func decodeWitness(_ table: TOMLTable, log: IssueLog) -> Witness? {
        let reader = TableReader(table: table, context: "[witness]", log: log)
        reader.refuseUnknownKeys(accepted: ["address"])
        return reader.readEndpoint("address", required: true).map(Witness.init)
    }
}
