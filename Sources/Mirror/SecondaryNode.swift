import Glibc
import Logging
import ReplApply
import ReplFS
import ReplTransport

/// The secondary's side of `mirror run`: accept the primary's connection and apply its stream to
/// this node's copy of the module's directory, which applications see through a read-only ReplFS
/// mount; until SIGTERM, SIGINT or SIGHUP.
enum SecondaryNode {
    static func run(_ plan: NodePlan, logger: Logger) throws {
        StopSignals.blockInThisAndNewThreads()
        let path = try MountPoint.prepare(plan.directory) { logger.warning("\($0)") }
        umask(0)
        // Opened before the mount hides the directory: the applier works underneath it.
        let directoryFD = try MountPoint.openBacking(path)
        defer { close(directoryFD) }
        let listener = try ReplicationListener(address: plan.listenAddress, configuration: plan.handshake, logger: logger) { channel in
            apply(channel, toCopyAt: directoryFD, logger: logger)
        }
        defer { listener.close() }
        logger.info("secondary: applying replicated changes to \(path), mounted read-only for applications")
        try MountService.serve(path: path, options: .replica, threads: 2, replicator: nil, logger: logger, readiness: nil)
    }

    /// Applies one connection's operations with an applier of its own, until the connection ends.
    private static func apply(_ channel: ReplicationChannel, toCopyAt directoryFD: Int32, logger: Logger) {
        let applier: ReplicaApplier
        do {
            applier = try ReplicaApplier(rootFD: try sys { fcntl(directoryFD, F_DUPFD_CLOEXEC, 0) })
        } catch {
            logger.error("cannot apply the stream of \(channel.peerDescription): \(error)")
            channel.close()
            return
        }
        let receiver = ReplicationReceiver(channel: channel, logger: logger)
        do {
            try receiver.run { _, message in
                do {
                    try applier.apply(message)
                    return .applied
                } catch {
                    logger.warning("could not apply: \(error)")
                    return .failed(errno: errnoCode(of: error))
                }
            }
            logger.info("replication connection from \(receiver.peerDescription) ended")
        } catch {
            // The receiver has logged why the stream broke.
        }
    }
}
