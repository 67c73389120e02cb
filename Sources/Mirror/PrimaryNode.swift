import Glibc
import Logging
import MirrorCore
import ReplFS
import ReplProtocol
import ReplTransport

/// The primary's side of `mirror run`: serve ReplFS over every replicated directory with every
/// change replicated to the secondary when it is there, alone (changes journaled) when not.
///
/// Before mounting, the primary checks each copy (a copy left behind by an interrupted resync is
/// not served without `--force`), tries the secondary for a while and compares the data
/// generations: a secondary whose copy is newer or diverged is refused, and so is the start.
/// Once mounted, a ``PrimaryLink`` per directory keeps the peer: it resynchronises it, and
/// reconnects after a loss.
enum PrimaryNode {
    /// `peerWait`: how long the secondary may take to answer before the primary starts alone.
    static func run(_ plan: NodePlan, force: Bool, peerWait: Duration, logger: Logger) throws {
        StopSignals.blockInThisAndNewThreads()
        var mounts: [MountService.Mount] = []
        var links: [PrimaryLink] = []
        var copies: [Int32] = []
        defer { for fd in copies { close(fd) } }
        var wait = peerWait
        for unit in plan.units {
            let path = try MountPoint.prepare(unit.directory) { logger.warning("\($0)") }
            let state = try UnitState(directory: unit.stateDirectory, regionSize: plan.regionSize)
            try checkCopy(state, unit: unit, force: force, logger: logger)
            let copyFD = try MountPoint.openBacking(path)
            copies.append(copyFD)
            let status = UnitStatus(directory: unit.stateDirectory, unit: unit, role: "primary")
            let replicator = Replicator(module: unit.index, moduleName: unit.name, journal: state.journal, logger: logger) {
                try state.generations.startAlone()
                logger.warning("module \(unit.name): serving alone in generation \(state.generations.generations)")
                status.set("peer", "alone (changes journaled for \(plan.peerName))")
                status.set("generation", "\(state.generations.generations)")
            }
            let link = PrimaryLink(plan: plan, unit: unit, state: state, replicator: replicator, copyFD: copyFD,
                                   status: status, logger: logger)
            if !(try connect(link, waiting: wait)) { wait = .zero }
            links.append(link)
            mounts.append(MountService.Mount(path: path, options: ReplFSOptions(), threads: 4, replicator: replicator))
        }
        defer { for link in links { link.stop(); link.replicator.close() } }
        try MountService.serve(mounts, logger: logger, readiness: nil)
    }

    /// Connects and negotiates before the mount; starts the link. Returns whether the peer answered.
    private static func connect(_ link: PrimaryLink, waiting: Duration) throws -> Bool {
        let state = link.state
        let name = link.unit.name
        let channel: ReplicationChannel
        do {
            channel = try link.connector.connect(retryingFor: waiting)
        } catch TransportError.refused(let refusal) {
            // A wrong key, cluster or node name is a configuration error, not an absent peer.
            throw Failure(message: "\(TransportError.refused(refusal))")
        } catch {
            try state.generations.startAlone()
            link.logger.warning("""
                module \(name): the secondary did not answer within \(waiting); serving alone in generation \
                \(state.generations.generations) (changes are journaled for its return)
                """)
            link.status.set("peer", "alone (changes journaled for \(link.plan.peerName))")
            link.status.set("generation", "\(state.generations.generations)")
            link.start(resyncingWith: nil)
            return false
        }
        let sender = link.makeSender(channel)
        switch link.negotiate(sender) {
        case .lead(let method, let peerDirty):
            link.replicator.attach(sender, resyncing: true)
            link.start(resyncingWith: (sender, method, peerDirty))
            return true
        case .refuse(let message):
            sender.close()
            throw Failure(message: message)
        }
    }

    /// Refuses a copy that is not up to date, unless forced (then it becomes the reference).
    private static func checkCopy(_ state: UnitState, unit: UnitPlan, force: Bool, logger: Logger) throws {
        let generations = state.generations.generations
        if generations.current.isJustCreated {
            try state.generations.startAsReference()
            logger.info("module \(unit.name): no history yet; this node's copy is the reference, generation \(state.generations.generations)")
        } else if !generations.upToDate {
            guard force else {
                throw Failure(message: """
                    module \(unit.name): this node's copy is not up to date (generation \(generations)): a resync \
                    towards it did not complete. Start this node as secondary so that its peer resynchronises it, or, \
                    if the peer's copy is lost, start it with --force to serve this copy as the reference.
                    """)
            }
            let forced = DataGenerations(current: GenerationID(UInt64.random(in: 1...UInt64.max)),
                                         history: [generations.current] + generations.history, upToDate: true)
            try state.generations.save(forced, aloneSince: 0)
            logger.warning("module \(unit.name): forced: this node's copy is the reference, generation \(forced)")
        }
    }
}
