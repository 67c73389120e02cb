import Glibc
import Logging
import MirrorCore
import ReplFS
import ReplProtocol
import ReplTransport

/// The primary's side of `mirror run`: serve ReplFS over the module's directory with every
/// change replicated to the secondary when it is there, alone (changes journaled) when not.
///
/// Before mounting, the primary checks its own copy (a copy left behind by an interrupted
/// resync is not served without `--force`), tries the secondary for a while and compares the
/// data generations: a secondary whose copy is newer or diverged is refused, and so is the
/// start. Once mounted, ``PrimaryLink`` keeps the peer: it resynchronises it, and reconnects
/// after a loss.
enum PrimaryNode {
    /// `peerWait`: how long the secondary may take to answer before the primary starts alone.
    static func run(_ plan: NodePlan, force: Bool, peerWait: Duration, logger: Logger) throws {
        StopSignals.blockInThisAndNewThreads()
        let path = try MountPoint.prepare(plan.directory) { logger.warning("\($0)") }
        let state = try ModuleState(directory: plan.stateDirectory, regionSize: plan.regionSize)
        try checkCopy(state, plan: plan, force: force, logger: logger)
        let backingFD = try MountPoint.openBacking(path)
        defer { close(backingFD) }
        let replicator = Replicator(module: 0, moduleName: plan.moduleName, journal: state.journal, logger: logger) {
            try state.generations.startAlone()
            logger.warning("module \(plan.moduleName): serving alone in generation \(state.generations.generations)")
        }
        defer { replicator.close() }
        let link = PrimaryLink(plan: plan, state: state, replicator: replicator, copyFD: backingFD, logger: logger)
        let connector = link.connector
        var firstSender: ReplicationSender?
        if let channel = try? connector.connect(retryingFor: peerWait) {
            let sender = link.makeSender(channel)
            switch link.negotiate(sender) {
            case .lead(let method, let peerDirty):
                replicator.attach(sender, resyncing: true)
                firstSender = sender
                link.start(resyncingWith: (sender, method, peerDirty))
            case .refuse(let message):
                sender.close()
                throw Failure(message: message)
            }
        }
        if firstSender == nil {
            try state.generations.startAlone()
            logger.warning("""
                module \(plan.moduleName): the secondary did not answer within \(peerWait); serving alone in \
                generation \(state.generations.generations) (changes are journaled for its return)
                """)
            link.start(resyncingWith: nil)
        }
        try MountService.serve(path: path, options: ReplFSOptions(), threads: 4, replicator: replicator,
                               logger: logger, readiness: nil)
        link.stop()
    }

    /// Refuses a copy that is not up to date, unless forced (then it becomes the reference).
    private static func checkCopy(_ state: ModuleState, plan: NodePlan, force: Bool, logger: Logger) throws {
        let generations = state.generations.generations
        if generations.current.isJustCreated {
            try state.generations.startAsReference()
            logger.info("module \(plan.moduleName): no history yet; this node's copy is the reference, generation \(state.generations.generations)")
        } else if !generations.upToDate {
            guard force else {
                throw Failure(message: """
                    module \(plan.moduleName): this node's copy is not up to date (generation \(generations)): a resync \
                    towards it did not complete. Start this node as secondary so that its peer resynchronises it, or, \
                    if the peer's copy is lost, start it with --force to serve this copy as the reference.
                    """)
            }
            let forced = DataGenerations(current: GenerationID(UInt64.random(in: 1...UInt64.max)),
                                         history: [generations.current] + generations.history, upToDate: true)
            try state.generations.save(forced, aloneSince: 0)
            logger.warning("module \(plan.moduleName): forced: this node's copy is the reference, generation \(forced)")
        }
    }
}
