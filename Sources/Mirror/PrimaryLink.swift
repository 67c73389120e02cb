import Glibc
import Logging
import MirrorCore
import ReplFS
import ReplProtocol
import ReplTransport

/// The primary's connection to its peer over time: the status exchange and connect decision,
/// the resync that brings the peer's copy up to date, and reconnection after a loss.
final class PrimaryLink {
    /// What the connect decision lets the primary do with a connected peer.
    enum Negotiation {
        /// This node's copy leads: resynchronise the peer with `method`.
        case lead(ResyncMethod, peerDirty: [DirtyFile])
        /// The peer must not receive this node's copy; the message says why.
        case refuse(String)
    }

    let plan: NodePlan
    let unit: UnitPlan
    let state: UnitState
    let replicator: Replicator
    let copyFD: Int32
    let status: UnitStatus
    let logger: Logger
    let connector: ReplicationConnector
    private let stopping = Monitor()
    private var isStopping = false
    /// How long a refused peer is left alone before it is tried again.
    var refusalPause: Duration = .seconds(30)
    /// Set by the cluster loop: when to try the peer, and what became of each resync.
    var observer: LinkObserver?

    init(plan: NodePlan, unit: UnitPlan, state: UnitState, replicator: Replicator, copyFD: Int32, status: UnitStatus,
         logger: Logger) {
        self.status = status
        self.plan = plan
        self.unit = unit
        self.state = state
        self.replicator = replicator
        self.copyFD = copyFD
        self.logger = logger
        var connector = ReplicationConnector(addresses: plan.peerAddresses, configuration: plan.handshake, logger: logger)
        connector.connectTimeout = .seconds(1)
        self.connector = connector
    }

    func makeSender(_ channel: ReplicationChannel) -> ReplicationSender {
        ReplicationSender(channel: channel, settings: .init(acknowledgementTimeout: plan.acknowledgementTimeout), logger: logger)
    }

    /// Sends this node's status, reads the peer's, and decides.
    func negotiate(_ sender: ReplicationSender) -> Negotiation {
        let (mine, _) = state.status(module: unit.index, serving: true, rootFD: copyFD)
        let ticket: Ticket
        do {
            ticket = try sender.send(.moduleStatus(mine))
        } catch {
            return .refuse("module \(unit.name): cannot send this node's status: \(error)")
        }
        let answer = sender.reply(to: ticket)
        if case .failed(EAGAIN) = answer.0 {
            return .refuse("module \(unit.name): \(plan.peerName) does not take the stream yet (its module is not SECOND)")
        }
        if case .failed(EBUSY) = answer.0 {
            return .refuse("module \(unit.name): \(plan.peerName) already receives this module from another primary; refusing to replicate to it")
        }
        guard case (.applied, .moduleStatusReply(let reply)?) = answer else {
            return .refuse("module \(unit.name): the peer did not answer with its status (\(sender.lossReason ?? "no reply"))")
        }
        let peer = reply.status
        let decision = compareGenerations(local: state.generations.generations, peer: DataGenerations(wire: peer.generations))
        guard let plan = decision.outcome.sendPlan ?? (decision.outcome == .inSync ? ResyncPlan(.send, .changeMap) : nil) else {
            return .refuse(ConnectExplanation.refusal(decision, module: unit.name,
                                                      local: (self.plan.nodeName, mine), peer: (self.plan.peerName, peer)))
        }
        if peer.serving {
            return .refuse("module \(unit.name): \(self.plan.peerName) says it serves the module too; "
                + "refusing to replicate over a serving copy. " + ConnectExplanation.describe(self.plan.nodeName, mine)
                + "; " + ConnectExplanation.describe(self.plan.peerName, peer))
        }
        logger.info("module \(unit.name): \(self.plan.peerName) connected (\(decision)); resynchronising it by \(plan.kind.rawValue)")
        status.set("peer", "\(self.plan.peerName) connected, resynchronising")
        if plan.kind == .changeMap && !peer.dirtyListComplete {
            // The peer could not name every file it may hold differently: compare everything.
            logger.warning("module \(unit.name): \(self.plan.peerName) holds more possibly different files than it could list; resynchronising by checksum")
            return .lead(.checksum, peerDirty: peer.dirty)
        }
        return .lead(plan.kind == .checksum ? .checksum : .changeMap, peerDirty: peer.dirty)
    }

    /// Starts the thread that resynchronises the first peer (if any) and then keeps a peer.
    func start(resyncingWith first: (ReplicationSender, ResyncMethod, [DirtyFile])?) {
        BackgroundThread.start { [self] in
            if let (sender, method, dirty) = first {
                waitForMount()
                resync(sender, method: method, peerDirty: dirty)
            }
            keepPeer()
        }
    }

    func stop() {
        stopping.locked { isStopping = true }
    }

    private var stopped: Bool { stopping.locked { isStopping } }

    private func waitForMount() {
        while !replicator.isServing && !stopped { usleep(10_000) }
    }

    /// Resyncs that did not complete in a row (the pause before the next attempt grows).
    private var failedResyncs = 0

    /// Reconnects whenever the peer is gone.
    private func keepPeer() {
        while !stopped {
            if let sender = replicator.currentSender {
                if sender.isConnected {
                    usleep(200_000)
                    continue
                }
                // Lost while nobody was writing: alone from now on, then look for the peer again.
                replicator.detach(because: "peer lost (\(sender.lossReason ?? "unknown reason"))")
            }
            if let observer, !observer.mayConnect() {
                usleep(100_000)
                continue
            }
            let channel: ReplicationChannel
            do {
                channel = try connector.connect()
            } catch TransportError.refused(let refusal) {
                logger.error("module \(unit.name): \(TransportError.refused(refusal)); trying again in \(refusalPause)")
                sleep(refusalPause)
                continue
            } catch {
                usleep(1_000_000)
                continue
            }
            let sender = makeSender(channel)
            switch negotiate(sender) {
            case .lead(let method, let dirty):
                replicator.attach(sender, resyncing: true)
                let upToDate = resync(sender, method: method, peerDirty: dirty)
                observer?.resyncEnded(upToDate)
                if upToDate {
                    failedResyncs = 0
                } else {
                    // Do not hammer a peer that cannot complete a resync: 1, 2, 4... 30 s.
                    failedResyncs += 1
                    sleep(.seconds(min(30, 1 << min(failedResyncs - 1, 5))))
                }
            case .refuse(let message):
                sender.close()
                logger.error("\(message)")
                status.set("peer", "refused: \(message)")
                sleep(refusalPause)
            }
        }
    }

    /// Brings the peer's copy to this one; on any failure the peer is dropped (and retried).
    /// Returns whether the peer is up to date.
    @discardableResult
    private func resync(_ sender: ReplicationSender, method: ResyncMethod, peerDirty: [DirtyFile]) -> Bool {
        let name = unit.name
        let begin = ResyncBegin(module: unit.index, method: method, source: state.generations.generations.wire)
        guard let ticket = try? sender.send(.resyncBegin(begin)), sender.wait(for: ticket) == .applied else {
            return fail(because: "the peer did not accept the resync (\(sender.lossReason ?? "refused"))")
        }
        let source = ResyncSource(replicator: replicator, sender: sender, method: method, peerDirty: peerDirty, logger: logger)
        let reporter = ProgressReporter(every: .seconds(5)) { [logger, status] in
            logger.info("module \(name): resync \(source.progress)")
            status.set("resync", "sending to \(self.plan.peerName): \(source.progress)")
        }
        status.set("resync", "sending to \(plan.peerName): starting (\(method == .checksum ? "checksum" : "change map"))")
        defer { status.set("resync", "none") }
        defer { reporter.stop() }
        let report: ResyncSource.Report
        do {
            report = try source.run()
        } catch {
            return fail(because: "\(error)")
        }
        replicator.resyncCompleted()
        if state.journal.hasStickyChanges {
            return fail(because: "changes made at the end of the resync were not confirmed by the peer; resynchronising again")
        }
        let final = state.generations.generations.resyncFinishedAsSource()
        guard let endTicket = try? sender.send(.resyncEnd(ResyncEnd(module: unit.index, generations: final.wire))),
              sender.wait(for: endTicket) == .applied else {
            return fail(because: "the peer did not confirm the end of the resync")
        }
        do {
            try state.journal.resyncCompleted()
            try state.generations.save(final, aloneSince: 0)
        } catch {
            return fail(because: "cannot record the completed resync: \(error)")
        }
        let elapsed = source.progress.elapsed
        status.set("peer", "\(plan.peerName) connected, up to date")
        status.set("generation", "\(final)")
        status.set("last_resync", "\(report.bytesSent) bytes in \(report.regionsSent) regions, \(report.passes) pass(es), \(elapsed), ended \(utcText(Int64(time(nil))))")
        logger.info("""
            module \(name): \(plan.peerName) is up to date: resync by \(method == .checksum ? "checksum" : "change map") sent \
            \(report.bytesSent) bytes in \(report.regionsSent) regions, \(report.filesVisited) entries seen, \(report.passes) \
            pass(es), \(elapsed); generation \(final)
            """)
        return true
    }

    /// Drops the peer after a resync that could not complete; always false.
    private func fail(because reason: String) -> Bool {
        replicator.detach(because: reason)
        return false
    }

    private func sleep(_ duration: Duration) {
        let deadline = ContinuousClock.now + duration
        while !stopped && ContinuousClock.now < deadline { usleep(200_000) }
    }
}

/// What the cluster loop tells a ``PrimaryLink`` and learns from it.
struct LinkObserver {
    /// Whether to try the peer now (it announces itself SECOND).
    let mayConnect: () -> Bool
    /// A resync ended: true when the peer's copy is up to date.
    let resyncEnded: (Bool) -> Void
}

/// Runs a closure periodically on its own thread until stopped.
final class ProgressReporter {
    private let lock = Monitor()
    private var running = true

    init(every interval: Duration, _ report: @escaping () -> Void) {
        BackgroundThread.start { [self] in
            var next = ContinuousClock.now + interval
            while lock.locked({ running }) {
                usleep(100_000)
                if ContinuousClock.now >= next {
                    report()
                    next = ContinuousClock.now + interval
                }
            }
        }
    }

    func stop() { lock.locked { running = false } }
}
