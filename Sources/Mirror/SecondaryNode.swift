import Glibc
import Logging
import ReplApply
import ReplFS
import ReplTransport

/// The secondary's side of `mirror run`: accept the primary's connection and apply its stream to
/// this node's copy of the module's directory, until SIGTERM, SIGINT or SIGHUP.
enum SecondaryNode {
    static func run(_ plan: NodePlan, logger: Logger) throws {
        // Blocked before any thread starts, so only the waiting main thread receives them.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&stopSignals, signal) }
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

        umask(0)
        let directoryFD = try MountPoint.openBacking(plan.directory)
        defer { close(directoryFD) }
        let listener = try ReplicationListener(address: plan.listenAddress, configuration: plan.handshake, logger: logger) { channel in
            apply(channel, toCopyAt: directoryFD, logger: logger)
        }
        logger.info("secondary: applying replicated changes to \(plan.directory), left unmounted in this version (the read-only mount comes later)")
        var received: Int32 = 0
        sigwait(&stopSignals, &received)
        logger.info("stopping on signal \(received)")
        listener.close()
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
