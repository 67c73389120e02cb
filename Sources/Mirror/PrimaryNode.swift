import Logging
import ReplFS
import ReplTransport

/// The primary's side of `mirror run`: connect to the secondary, then serve ReplFS over the
/// module's directory with every change replicated.
enum PrimaryNode {
    /// How long the secondary may take to answer before the primary gives up starting.
    static let connectPatience = Duration.seconds(30)

    static func run(_ plan: NodePlan, logger: Logger) throws {
        StopSignals.blockInThisAndNewThreads()
        let path = try MountPoint.prepare(plan.directory) { logger.warning("\($0)") }
        let connector = ReplicationConnector(addresses: plan.peerAddresses, configuration: plan.handshake, logger: logger)
        let channel = try connector.connect(retryingFor: connectPatience)
        let sender = ReplicationSender(channel: channel, settings: .init(acknowledgementTimeout: plan.acknowledgementTimeout),
                                       logger: logger)
        let replicator = Replicator(sender: sender, module: 0, moduleName: plan.moduleName, logger: logger)
        defer { replicator.close() }
        try MountService.serve(path: path, options: ReplFSOptions(), threads: 4, replicator: replicator,
                               logger: logger, readiness: nil)
    }
}
