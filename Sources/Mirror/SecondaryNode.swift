import CLinux
import Glibc
import Logging
import MirrorCore
import ReplApply
import ReplFS
import ReplProtocol
import ReplTransport

/// The secondary's side of `mirror run`: accept the primary's connection and apply its stream to
/// this node's copy of the module's directory, which applications see through a read-only ReplFS
/// mount; until SIGTERM, SIGINT or SIGHUP.
enum SecondaryNode {
    static func run(_ plan: NodePlan, logger: Logger) throws {
        StopSignals.blockInThisAndNewThreads()
        let path = try MountPoint.prepare(plan.directory) { logger.warning("\($0)") }
        let state = try ModuleState(directory: plan.stateDirectory, regionSize: plan.regionSize)
        umask(0)
        // Opened before the mount hides the directory: the applier works underneath it.
        let directoryFD = try MountPoint.openBacking(path)
        defer { close(directoryFD) }
        let listener = try ReplicationListener(address: plan.listenAddress, configuration: plan.handshake, logger: logger) { channel in
            let session = SecondarySession(plan: plan, state: state, copyFD: directoryFD, logger: logger)
            session.serve(channel)
        }
        defer { listener.close() }
        logger.info("secondary: applying replicated changes to \(path), mounted read-only for applications; generation \(state.generations.generations)")
        try MountService.serve(path: path, options: .replica, threads: 2, replicator: nil, logger: logger, readiness: nil)
    }
}

/// One connection from the primary: the status exchange and its decision, then the stream of
/// live changes and resync messages, applied in order.
///
/// Nothing is applied before the primary's status was received and the connect decision lets
/// this node receive (its copy is equal to or older than the primary's, with a known history or
/// by checksum); otherwise every message is refused and the refusal logged with who changed
/// what since when. `resyncBegin` marks the copy not up to date on disk before anything of the
/// resync is applied; `resyncEnd` records the primary's generations and clears the journal.
final class SecondarySession {
    private let plan: NodePlan
    private let state: ModuleState
    private let copyFD: Int32
    private let logger: Logger
    private var accepted = false
    private var refusalLogged = false

    init(plan: NodePlan, state: ModuleState, copyFD: Int32, logger: Logger) {
        self.plan = plan
        self.state = state
        self.copyFD = copyFD
        self.logger = logger
    }

    func serve(_ channel: ReplicationChannel) {
        let applier: ReplicaApplier
        do {
            applier = try ReplicaApplier(rootFD: try sys { fcntl(copyFD, F_DUPFD_CLOEXEC, 0) })
        } catch {
            logger.error("cannot apply the stream of \(channel.peerDescription): \(error)")
            channel.close()
            return
        }
        let receiver = ReplicationReceiver(channel: channel, logger: logger)
        do {
            try receiver.run { sequence, message in handle(sequence, message, applier: applier) }
            logger.info("replication connection from \(receiver.peerDescription) ended")
        } catch {
            // The receiver has logged why the stream broke.
        }
    }

    private func handle(_ sequence: UInt64, _ message: Message, applier: ReplicaApplier) -> ReplicationReceiver.ApplyResult {
        do {
            switch message {
            case .moduleStatus(let peer):
                return .replied(.moduleStatusReply(ModuleStatusReply(requestSequence: sequence, status: decide(peer))))
            case .verifyDirectory(let listing):
                return .replied(.verifyReply(VerifyReply(requestSequence: sequence, differences: compare(listing))))
            case .regionChecksumsRequest:
                return .failed(errno: EOPNOTSUPP)
            case _ where !accepted:
                if !refusalLogged {
                    logger.error("module \(plan.moduleName): refusing \(message.type) from the primary: its copy may not replace this one (see above)")
                    refusalLogged = true
                }
                return .failed(errno: EPERM)
            case .resyncBegin:
                try state.generations.save(state.generations.generations.resyncStarted())
                try applier.apply(message)
                logger.info("module \(plan.moduleName): resync from \(plan.peerName) started; this copy is not up to date until it ends")
            case .resyncEnd(let end):
                try applier.apply(message)
                try state.journal.clear()
                let adopted = DataGenerations(wire: end.generations).with(upToDate: true)
                try state.generations.save(adopted, aloneSince: 0)
                logger.info("module \(plan.moduleName): resync from \(plan.peerName) complete; this copy is up to date, generation \(adopted)")
            default:
                try applier.apply(message)
            }
            return .applied
        } catch {
            logger.warning("could not apply: \(error)")
            return .failed(errno: errnoCode(of: error))
        }
    }

    /// `mirror verify`: how this copy of a directory differs from the peer's listing.
    private func compare(_ listing: DirectoryManifest) -> [String] {
        let shown = listing.path.map { "\($0)/" } ?? "./"
        var fd = fcntl(copyFD, F_DUPFD_CLOEXEC, 0)
        for component in listing.path?.bytes.split(separator: UInt8(ascii: "/")) ?? [] where fd >= 0 {
            let name = component.map { CChar(bitPattern: $0) } + [0]
            let next = openat(fd, name, clinux_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(fd)
            fd = next
        }
        guard fd >= 0 else { return ["\(shown): missing on \(plan.nodeName) (\(FSError.last))"] }
        defer { close(fd) }
        do {
            return try ListingComparison.differences(listing, dirFD: fd, here: plan.nodeName, there: plan.peerName)
        } catch {
            return ["\(shown): cannot be read on \(plan.nodeName): \(error)"]
        }
    }

    /// Compares generations; accepts the stream only when this copy may receive the primary's.
    private func decide(_ peer: ModuleStatus) -> ModuleStatus {
        let (mine, truncated) = state.status(serving: false, rootFD: copyFD)
        if truncated {
            logger.warning("module \(plan.moduleName): more files may differ than one status can list; only the first \(mine.dirty.count) are named to the primary")
        }
        let decision = compareGenerations(local: state.generations.generations, peer: DataGenerations(wire: peer.generations))
        accepted = decision.outcome.receivePlan != nil || decision.outcome == .inSync
        refusalLogged = false
        if accepted {
            logger.info("module \(plan.moduleName): \(plan.peerName) is primary (\(decision)); receiving")
        } else {
            logger.error("\(ConnectExplanation.refusal(decision, module: plan.moduleName, local: (plan.nodeName, mine), peer: (plan.peerName, peer)))")
        }
        return mine
    }
}
