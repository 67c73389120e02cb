import ClusterConfig
import Glibc
import HeartbeatTransport
import Logging
import MirrorCore
import ReplTransport
import VirtualIP

/// One module on this node in the cluster daemon: the thin loop around its pure state machine
/// (``ModuleNode``). Events (ticks, the peer's heartbeats, operator commands, what the data
/// layer, checkers and process watch report) are fed in order on the module's own thread;
/// quick actions (announce, log, witness requests) happen there at once, the others (persist,
/// mount, virtual IP, scripts) in order on the module's action thread, so a long start script
/// never delays heartbeats.
///
/// Leaving PRIM or ALONE, the state machine announces its new state at once, while the stop
/// script, the virtual IP's removal and the unmount are still to come: the peer would take over
/// while the application still writes here. So the runtime keeps announcing the serving state
/// (with fresh stamps, so the peer still sees it alive) until those actions are done.
final class ModuleRuntime {
    let name: String
    let module: Module
    let units: [UnitRuntime]
    private let data: ModuleData
    private let settings: ClusterNodeSettings
    private let heartbeats: HeartbeatChannel
    private let witness: WitnessClient?
    private let logger: Logger
    private let virtualIPs: [VirtualAddress]
    private let processes: ProcessWatch
    /// The start script ran here and the stop script has not succeeded since.
    private let applicationMarker: MarkerFile
    /// This copy was last mounted read-only, following the peer.
    private let followingMarker: MarkerFile

    private let inbox = Monitor()
    private var pending: [Work] = []
    private var node: ModuleNode
    private var lastSummary: DataGenerations?
    /// The serving state announced until this node has stopped serving (see above).
    private var heldAnnouncement: Announcement?
    private var lastAnnouncement: Announcement?
    private var lastHeartbeat: Heartbeat?

    /// What the module's thread does next.
    private enum Work {
        case event(Event)
        /// An operator's command, answered with the refusals it met (none: accepted).
        case command(Command, Reply)
        /// The actions that stop serving here are done: announce the true state.
        case releaseAnnouncement
    }

    private let actionQueue = Monitor()
    private var batches: [ActionBatch] = []
    private var performing = false

    /// What other threads may read: the state, the peer as last heard, resync bookkeeping.
    private let shared = Monitor()
    private var published = Published()
    private var linksUpToDate: Set<Int> = []
    private var processWatchArmed = false

    /// The snapshot other threads read (status, the links' connect decision).
    struct Published {
        var state: ModuleState = .stop
        var generations: DataGenerations?
        var peerState: ModuleState?
        var peerGenerations: DataGenerations?
        var checkersDown: Set<String> = []
        var peerHeardAt: ContinuousClock.Instant?
        var peerHeardWall: Int64 = 0
        var notes: [String] = []
        var timeline: TakeoverTimeline?
    }

    /// - Parameter stateDirectory: the module's state directory on this node (`STATE_DIR/MODULE`).
    init(module: Module, units: [UnitRuntime], data: ModuleData, stateDirectory: String, settings: ClusterNodeSettings,
         heartbeats: HeartbeatChannel, witness: WitnessClient?, logger: Logger) throws {
        name = module.name
        self.module = module
        self.units = units
        self.data = data
        self.settings = settings
        self.heartbeats = heartbeats
        self.witness = witness
        self.logger = logger
        virtualIPs = try module.virtualIPs.map { try VirtualAddress(cidr: "\($0.address)/\($0.prefixLength)", interface: $0.interface) }
        processes = ProcessWatch(monitors: module.processMonitors, pathPrefix: settings.localPath)
        applicationMarker = MarkerFile(directory: stateDirectory, name: "application-running")
        followingMarker = MarkerFile(directory: stateDirectory, name: "following-peer")
        var random = SystemRandomNumberGenerator()
        node = ModuleNode(config: settings.moduleConfig(for: module), incarnation: heartbeats.incarnation, generationSeed: random.next())
    }

    /// Starts the module's threads and loads its data state; `autostart` starts it (boot on).
    func start(autostart: Bool) {
        removeLeftoverVirtualIPs()
        let leftoverStopped = stopApplicationLeftByPredecessor()
        let copyChecked = distrustCopyLeftFollowingThePeer()
        BackgroundThread.start { [self] in eventLoop() }
        BackgroundThread.start { [self] in actionLoop() }
        for checker in module.checkers { BackgroundThread.start { [self] in watch(checker) } }
        if !module.processMonitors.isEmpty { BackgroundThread.start { [self] in watchProcesses() } }
        let loaded = data.summary
        lastSummary = loaded
        post(.localDataLoaded(loaded))
        if autostart && leftoverStopped && copyChecked { post(.command(.start)) }
    }

    /// The previous daemon ended while this copy followed the peer (SECOND) without stopping the
    /// module (kill -9, a crash, a power loss): the peer may have served alone since, so this
    /// copy, up to date when it was last heard of, no longer counts as such until the peer is
    /// seen again (equal generations make it up to date at once, newer ones resync it) or the
    /// operator forces `prim`. Without this, a node that died as SECOND and starts while its
    /// peer is down would serve a copy that lacks what the peer acknowledged meanwhile.
    private func distrustCopyLeftFollowingThePeer() -> Bool {
        guard followingMarker.isPresent else { return true }
        guard data.summary.upToDate else { return true }
        do {
            try data.markNotUpToDate()
            logger.warning("""
                module \(name): this copy followed \(settings.peerName) when the previous daemon ended without stopping the \
                module: not up to date until \(settings.peerName) is seen (or clusterctl prim -m \(name))
                """)
            return true
        } catch {
            let text = "cannot mark the copy left following \(settings.peerName) as not up to date (\(error)): not started at boot"
            logger.error("module \(name): \(text)")
            note(text)
            return false
        }
    }

    /// The previous daemon started the application here and died before it ran the stop script
    /// (marker `application-running`): the application may still run, writing to a dead mount, holding
    /// its ports. The stop script runs before anything else, over read-only mounts (it sees the
    /// data, e.g. PostgreSQL's postmaster.pid, but changes nothing unreplicated). If it fails,
    /// the module is not started at boot: an operator checks the node first (the note says why).
    private func stopApplicationLeftByPredecessor() -> Bool {
        guard applicationMarker.isPresent else { return true }
        logger.warning("module \(name): the previous daemon died while the application ran here; running the stop script to stop what it left")
        do {
            try whileMountedReadOnly(units[...]) { try runScript(\.stop, "stop") }
            try applicationMarker.clear()
            return true
        } catch {
            let text = "the application left by the previous daemon could not be stopped (\(error)): not started at boot; stop it, then clusterctl start -m \(name)"
            logger.error("module \(name): \(text)")
            note(text)
            return false
        }
    }

    /// A module whose daemon starts serves nothing here yet (STOP): one of its virtual IPs still on
    /// this node was left by a daemon that died while serving (kill -9, crash) on a machine that
    /// stayed up. It is removed before anything else, or this node would go on answering ARP for
    /// it while the peer serves, splitting the clients between the two.
    private func removeLeftoverVirtualIPs() {
        let manager = VirtualIPManager()
        for vip in virtualIPs {
            do {
                guard try manager.isPresent(vip) else { continue }
                if try manager.remove(vip) == .removed {
                    logger.warning("module \(name): virtual IP \(vip) was still here, left by a previous run that served; removed (this node serves nothing yet)")
                }
            } catch {
                logger.error("module \(name): cannot check or remove a virtual IP \(vip) left by a previous run: \(error)")
            }
        }
    }

    // MARK: Events

    func post(_ event: Event) { post(work: .event(event)) }

    private func post(work: Work) {
        inbox.locked {
            pending.append(work)
            inbox.broadcast()
        }
    }

    /// A heartbeat of this module from the peer.
    func received(_ heartbeat: Heartbeat) {
        shared.locked {
            published.peerState = heartbeat.announcement.state
            published.peerGenerations = heartbeat.announcement.generations
            published.peerHeardAt = .now
            published.peerHeardWall = wallMilliseconds()
        }
        post(.heartbeat(heartbeat))
    }

    private func eventLoop() {
        while true {
            let work = inbox.locked { () -> Work in
                while pending.isEmpty { _ = inbox.wait(until: nil) }
                return pending.removeFirst()
            }
            switch work {
            case .event(let event):
                handle(event)
            case .command(let command, let reply):
                reply.send(handle(.command(command)))
            case .releaseAnnouncement:
                heldAnnouncement = nil
                if let lastHeartbeat { send(lastHeartbeat) }
            }
        }
    }

    private func send(_ heartbeat: Heartbeat) {
        lastHeartbeat = heartbeat
        var sent = heartbeat
        if let heldAnnouncement { sent.announcement = heldAnnouncement } else { lastAnnouncement = heartbeat.announcement }
        heartbeats.send(sent, module: name)
    }

    /// Carries an operator command's answer back to the control thread.
    final class Reply {
        private let monitor = Monitor()
        private var refusals: [String]?

        func send(_ answer: [String]) {
            monitor.locked {
                refusals = answer
                monitor.broadcast()
            }
        }

        func wait() -> [String] {
            monitor.locked {
                while refusals == nil { _ = monitor.wait(until: nil) }
                return refusals!
            }
        }
    }

    /// Feeds an operator command; returns why it was refused (empty: accepted). With
    /// `waitForActions`, returns once what it set off (scripts, mounts) is done.
    func run(_ command: Command, waitingForActions: Bool) -> [String] {
        let reply = Reply()
        post(work: .command(command, reply))
        let refusals = reply.wait()
        if refusals.isEmpty && waitingForActions { waitForActions() }
        return refusals
    }

    /// Steps the state machine and dispatches its actions; returns the refusals it emitted.
    @discardableResult
    private func handle(_ event: Event) -> [String] {
        var refusals: [String] = []
        if event == .tick {
            let summary = data.summary
            if summary != lastSummary {
                lastSummary = summary
                handle(.localDataChanged(summary))
            }
        }
        let before = node.state
        let previous = node.generations
        let actions = node.step(event)
        // Notes say why the module is where it is: a new state starts with none.
        if node.state != before { shared.locked { published.notes = [] } }
        var batch = ActionBatch(previous: previous)
        if before.isServing && !node.state.isServing {
            heldAnnouncement = heldAnnouncement ?? lastAnnouncement
            batch.releasesAnnouncement = true
            for unit in units where unit.aloneFence.refuseIfRaised() {
                logger.warning("module \(name): stops serving while changes made alone were held: they fail (EIO), never acknowledged")
            }
        }
        for action in actions {
            switch action {
            case .announce(let heartbeat):
                send(heartbeat)
            case .log(let rule, let message):
                logger.info("module \(name): \(message) [\(rule)]")
            case .refuse(let command, let reason):
                let text = command.map { "\($0.rawValue) refused: \(reason)" } ?? reason
                logger.warning("module \(name): \(text)")
                note(text)
                if command != nil { refusals.append(reason) }
            case .askWitness(let request):
                askWitness(request)
            default:
                batch.actions.append(action)
            }
        }
        if !before.isServing && node.state.isServing {
            batch.timeline = startTimeline(from: before)
        }
        shared.locked {
            published.state = node.state
            published.generations = node.generations
        }
        if node.state != before {
            logger.info("module \(name): \(before.rawValue) -> \(node.state.rawValue)")
            for unit in units { unit.status.set("state", node.state.rawValue) }
        }
        if !batch.actions.isEmpty || batch.releasesAnnouncement {
            actionQueue.locked {
                batches.append(batch)
                actionQueue.broadcast()
            }
        }
        releaseHeldChanges()
        return refusals
    }

    /// Replication was lost while serving: the data layer holds every change that would be
    /// acknowledged without the peer (``AloneFence``), so that a peer still counting its copy
    /// up to date never takes over without them. They go on once the peer cannot serve without
    /// them (its newest heartbeat counts its copy out of date, or it was resynchronised in this
    /// node's new generation), or once it has not been heard for the heartbeat timeout (it is
    /// gone, or cut off: docs/cluster.md, "Changes made alone are held until the peer knows").
    private func releaseHeldChanges() {
        for unit in units {
            guard let since = unit.aloneFence.raisedSince else { continue }
            let reason: String
            // The state machine must have adopted the generation the data layer started alone.
            if node.generations?.current == data.summary.current, node.peerCannotServeWithoutOurChanges {
                reason = "\(node.config.peer) cannot serve without them (its copy is out of date, or was resynchronised from here)"
            } else if !peerVisible {
                reason = "\(node.config.peer) not heard for \(settings.heartbeatTimeout)"
            } else {
                continue
            }
            let held = (ContinuousClock.now - since) / .milliseconds(1)
            if unit.aloneFence.lower() {
                logger.warning("module \(name): changes made alone released after \(Int(held)) ms: \(reason)")
            }
        }
    }

    private func askWitness(_ request: WitnessRequest) {
        guard let witness else { return }
        BackgroundThread.start { [self] in
            if request.kind == .release {
                witness.release(request, module: name)
            } else if let verdict = witness.ask(request, module: name) {
                post(.witnessVerdict(verdict))
            }
        }
    }

    private func note(_ text: String) {
        shared.locked {
            published.notes.append(text)
            if published.notes.count > 5 { published.notes.removeFirst() }
        }
    }

    // MARK: Actions

    /// The actions of one step, with the generations the state machine held before it.
    struct ActionBatch {
        var previous: DataGenerations?
        var actions: [Action] = []
        var timeline: TakeoverTimeline?
        /// This node stops serving with these actions: its true state is announced after them.
        var releasesAnnouncement = false
    }

    private func actionLoop() {
        while true {
            let batch = actionQueue.locked { () -> ActionBatch in
                while batches.isEmpty { _ = actionQueue.wait(until: nil) }
                performing = true
                return batches.removeFirst()
            }
            perform(batch)
            actionQueue.locked {
                performing = false
                actionQueue.broadcast()
            }
        }
    }

    /// Waits until every action posted so far has been performed.
    func waitForActions() {
        actionQueue.locked { while performing || !batches.isEmpty { _ = actionQueue.wait(until: nil) } }
    }

    /// Performs a step's actions in order. When one fails, what releases the service still
    /// goes on (the peer may take over only once this node let go); anything else stops the
    /// module here, and the rest of the step is skipped (nothing is served on a copy whose
    /// generation could not be recorded, or without its application).
    private func perform(_ batch: ActionBatch) {
        actions: for action in batch.actions {
            do {
                try perform(action, batch)
            } catch {
                note("\(action.summary) failed: \(error)")
                if [.runStopScript, .removeVirtualIP, .unmount].contains(action) {
                    logger.error("module \(name): \(action.summary) failed: \(error); going on releasing the service")
                    continue
                }
                logger.error("module \(name): \(action.summary) failed: \(error); stopping the module on this node")
                post(.command(.stop))
                break actions
            }
        }
        if batch.releasesAnnouncement { post(work: .releaseAnnouncement) }
        if let timeline = batch.timeline {
            shared.locked { published.timeline = timeline }
            logger.info("module \(name): \(timeline.summary)")
        }
    }

    private func perform(_ action: Action, _ batch: ActionBatch) throws {
        switch action {
        case .persistGenerations(let generations):
            if !(try data.persist(generations, replacing: batch.previous)) {
                logger.info("module \(name): generations changed by the data layer meanwhile; keeping \(data.summary)")
            }
        case .mountReadWrite:
            try followingMarker.clear()
            shared.locked { linksUpToDate = [] }
            for (index, unit) in units.enumerated() {
                // Replication is lost: this directory's peer copy no longer follows. The new
                // generation is announced at once (not at the next tick): the SECOND stops
                // counting itself up to date as soon as possible.
                try unit.mountReadWrite(startAlone: { [self] in
                                            shared.locked { _ = linksUpToDate.remove(index) }
                                            try data.startAlone()
                                            post(.localDataChanged(data.summary))
                                        },
                                        observer: LinkObserver(mayConnect: { [self] in peerIsSecond },
                                                               resyncEnded: { [self] in linkResyncEnded(index, upToDate: $0) }))
            }
            batch.timeline?.mark("mounted read-write")
        case .mountReadOnly:
            try followingMarker.set("mounted read-only, following \(settings.peerName)")
            for unit in units { try unit.mountReadOnly() }
        case .unmount:
            for unit in units { unit.unmount() }
        case .runStartScript:
            if module.scripts != nil { try applicationMarker.set("the start script ran") }
            try runScript(\.start, "start")
            batch.timeline?.mark("application started")
            armProcessWatch(true)
        case .runStopScript:
            armProcessWatch(false)
            try runScript(\.stop, "stop")
            try applicationMarker.clear()
        case .addVirtualIP:
            // No ARP probe: the state machine decided this node serves; a node whose daemon died
            // may still hold the address in its kernel and answer the probe. One gratuitous ARP
            // round now, two more in the background, so the start script does not wait for them.
            let manager = VirtualIPManager(options: .init(announcements: 1, probeTimeout: nil))
            for vip in virtualIPs {
                let outcome = try manager.add(vip)
                logger.info("module \(name): virtual IP \(vip) \(outcome == .added ? "added" : "already present"), announced")
            }
            if !virtualIPs.isEmpty {
                batch.timeline?.mark("virtual IP added")
                let addresses = virtualIPs
                BackgroundThread.start { [logger, name] in
                    for _ in 0..<2 {
                        Pause.sleep(for: .milliseconds(200))
                        for vip in addresses {
                            do { _ = try manager.announce(vip.address, on: vip.interface) } catch {
                                logger.warning("module \(name): announcing \(vip) again: \(error)")
                            }
                        }
                    }
                }
            }
        case .removeVirtualIP:
            let manager = VirtualIPManager()
            for vip in virtualIPs {
                _ = try manager.remove(vip)
                logger.info("module \(name): virtual IP \(vip) removed")
            }
        case .startResync(let plan):
            logger.info("module \(name): resync \(plan) (carried by the replication link)")
            if plan.direction == .send, shared.locked({ linksUpToDate.count == units.count }) { post(.resyncFinished) }
        case .stopResync:
            for unit in units { unit.stopResync() }
        case .restartProcess:
            armProcessWatch(false)
            try? runScript(\.stop, "stop")
            try runScript(\.start, "start")
            armProcessWatch(true)
        default:
            break
        }
    }

    private func runScript(_ which: KeyPath<Scripts, String>, _ label: String) throws {
        guard let scripts = module.scripts else { return }
        let path = scripts[keyPath: which]
        logger.info("module \(name): running the \(label) script \(path)")
        let started = ContinuousClock.now
        let outcome = ScriptRunner.run([path], environment: scriptEnvironment, timeout: settings.scriptTimeout)
        guard outcome.succeeded else { throw Failure(message: "the \(label) script \(path) failed (\(outcome))") }
        logger.info("module \(name): the \(label) script finished in \(ContinuousClock.now - started)")
    }

    private func whileMountedReadOnly<T>(_ units: ArraySlice<UnitRuntime>, _ body: () throws -> T) throws -> T {
        guard let first = units.first else { return try body() }
        return try first.whileMountedReadOnly { try whileMountedReadOnly(units.dropFirst(), body) }
    }

    /// What the module's scripts (start, stop, script checkers) are told.
    private var scriptEnvironment: [String: String] {
        ["MIRROR_MODULE": name, "MIRROR_NODE": settings.nodeName, "MIRROR_PATH_PREFIX": settings.localPath("")]
    }

    // MARK: Data layer

    /// Whether the peer announces itself SECOND of this module now (a link may connect).
    private var peerIsSecond: Bool {
        shared.locked {
            guard published.state.isServing, published.peerState == .second, let heard = published.peerHeardAt else { return false }
            return ContinuousClock.now - heard < settings.heartbeatTimeout
        }
    }

    private func linkResyncEnded(_ unit: Int, upToDate: Bool) {
        let all = shared.locked { () -> Bool in
            if upToDate { linksUpToDate.insert(unit) } else { linksUpToDate.remove(unit) }
            return linksUpToDate.count == units.count
        }
        if !upToDate { post(.resyncFailed) } else if all { post(.resyncFinished) }
    }

    /// What a directory's copy reports as the target of a resync.
    func receivingResync(_ unit: Int, _ moment: ResyncMoment) {
        switch moment {
        case .began:
            data.setReceiving(unit, true)
        case .ended:
            data.setReceiving(unit, false)
            if data.summary.upToDate { post(.resyncFinished) }
        case .interrupted:
            data.setReceiving(unit, false)
            post(.resyncFailed)
        }
    }

    // MARK: Checkers and processes

    /// Tests `checker` every interval while it applies here and is enabled; a checker that does
    /// not apply or that the operator disabled counts as up at once (looked at every 100 ms).
    private func watch(_ checker: Checker) {
        var lastUp = true
        var failure: String?
        var nextTest = ContinuousClock.now
        while true {
            let applies = !CheckerProbe.runsOnlyWhereServing(checker) || shared.locked { published.state.isServing && processWatchArmed }
            if applies && settings.isCheckerEnabled(name, checker.name) {
                if ContinuousClock.now >= nextTest {
                    failure = CheckerProbe.failure(of: checker, environment: scriptEnvironment)
                    nextTest = ContinuousClock.now + checker.interval
                }
            } else {
                failure = nil
                nextTest = ContinuousClock.now
            }
            let up = failure == nil
            if up != lastUp {
                lastUp = up
                if let failure { logger.warning("module \(name): checker \(checker.name) fails: \(failure)") }
                shared.locked { if up { published.checkersDown.remove(checker.name) } else { published.checkersDown.insert(checker.name) } }
                post(up ? .checkerUp(checker.name) : .checkerDown(checker.name))
            }
            Pause.sleep(for: .milliseconds(100))
        }
    }

    private func armProcessWatch(_ armed: Bool) { shared.locked { processWatchArmed = armed } }

    private func watchProcesses() {
        while true {
            Pause.sleep(for: .milliseconds(500))
            guard shared.locked({ processWatchArmed }), settings.isErrdEnabled(name) else { continue }
            if let dead = processes.deadProcess() {
                logger.warning("module \(name): process \(dead) is not running")
                armProcessWatch(false)
                post(.processDied)
            }
        }
    }


    // MARK: Status

    /// What other threads may show about the module.
    var snapshot: Published { shared.locked { published } }

    /// Whether the peer was heard within the heartbeat timeout.
    var peerVisible: Bool {
        shared.locked { published.peerHeardAt.map { ContinuousClock.now - $0 < settings.heartbeatTimeout } ?? false }
    }

    private func startTimeline(from state: ModuleState) -> TakeoverTimeline {
        let heard = shared.locked { published.peerHeardWall }
        let now = wallMilliseconds()
        let timeline = TakeoverTimeline(from: state.rawValue, lastHeard: heard > 0 && now - heard < 600_000 ? heard : now)
        timeline.mark("decided to serve")
        return timeline
    }
}

/// When each step of a takeover happened, in milliseconds after the peer was last heard.
final class TakeoverTimeline {
    let from: String
    let origin: Int64
    private let lock = Monitor()
    private var marks: [(String, Int64)] = []

    /// Each step's name and milliseconds after the origin, in order.
    var steps: [(String, Int64)] { lock.locked { marks } }

    init(from: String, lastHeard: Int64) {
        self.from = from
        origin = lastHeard
    }

    func mark(_ step: String) { lock.locked { marks.append((step, wallMilliseconds() - origin)) } }

    var summary: String {
        let text = steps.map { "\($0.0) +\($0.1) ms" }.joined(separator: ", ")
        return "timeline (from \(from), times after the peer was last heard at \(utcText(origin / 1000))): \(text)"
    }
}

/// Wall-clock milliseconds since the epoch.
func wallMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}
