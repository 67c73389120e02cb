extension ModuleNode {
    /// Persists `new` if it differs from what is persisted.
    mutating func persist(_ new: DataGenerations) {
        guard new != generations else { return }
        generations = new
        emit(.persistGenerations(new))
    }

    /// Starts serving without the peer (from WAIT, SECOND or PRIM): a new generation if no change
    /// map is kept yet, persisted before the data becomes writable and the virtual IP is added.
    mutating func becomeAlone(forced: Bool, rule: String, message: String) {
        guard var new = generations else { return }
        if new.mintsWhenAlone { new = new.startAlone(newCurrent: ids.next()) }
        if forced { new = new.with(upToDate: true) }
        persist(new)
        if resync != nil { emit(.stopResync) }
        if state != .prim {
            emit(.mountReadWrite)
            emit(.addVirtualIP)
            emit(.runStartScript)
        }
        log(rule, message)
        state = .alone
        lastNote = nil
        resync = nil
        resyncSession = nil
        resyncReceivedAll = false
        forcedPrim = false
        yielding = false
        aloneWantedSince = nil
    }

    /// ALONE → PRIM once the peer is this node's SECOND; starts the resync its copy needs.
    mutating func becomePrim(_ decision: ConnectDecision, peer other: Announcement) {
        state = .prim
        lastNote = nil
        log(decision.rule, "\(config.peer) joined as SECOND: replicating (\(decision.outcome.rawValue))")
        serveResyncSession(decision, peer: other)
    }

    /// Source side: serves the resync session the SECOND announces, once (a session that
    /// finished is not served again, a new session replaces a running one).
    mutating func serveResyncSession(_ decision: ConnectDecision, peer other: Announcement) {
        guard let session = other.resyncSession, session != completedSession, session != resyncSession,
              let plan = decision.outcome.sendPlan else { return }
        if resync != nil { emit(.stopResync) }
        resync = plan
        resyncSession = session
        emit(.startResync(plan))
    }

    /// WAIT → SECOND of a serving peer; when the copies differ, the copy is marked inconsistent
    /// (persisted) before the resync starts.
    mutating func becomeSecond(_ decision: ConnectDecision) {
        let plan = decision.outcome.receivePlan
        if plan != nil, let current = generations { persist(current.resyncStarted()) }
        emit(.mountReadOnly)
        state = .second
        lastNote = nil
        yielding = false
        log(decision.rule, "joining \(config.peer) as SECOND (\(decision.outcome.rawValue))")
        if let plan { startReceiving(plan) }
    }

    /// Target side: starts a new resync session.
    mutating func startReceiving(_ plan: ResyncPlan) {
        resync = plan
        resyncSession = TickStamp(incarnation: incarnation, tick: now)
        emit(.startResync(plan))
    }

    /// Leaves PRIM, ALONE or SECOND for WAIT.
    mutating func stepDown(rule: String, message: String, refusal: Bool = false) {
        releaseResources()
        state = .wait
        log(rule, message)
        if refusal { emit(.refuse(nil, reason: "\(message) (rule \(rule))")) }
        lastNote = rule
    }

    /// Operator `stop` (or the process restart budget exhausted): everything is released. If the
    /// peer runs with an up-to-date copy it will go on without us, so our copy is marked outdated.
    mutating func stopModule() {
        releaseResources()
        if let mine = generations, mine.upToDate, let other = visiblePeer, other.state.isRunning,
           other.generations?.upToDate == true {
            persist(mine.with(upToDate: false))
        }
        state = .stop
        lastNote = nil
        forcedPrim = false
        pendingSecond = false
        yielding = false
        lastNote = nil
        log("stopped", "module stopped")
    }

    /// Stops the resync, the application, the virtual IP and the mount this state holds.
    private mutating func releaseResources() {
        if resync != nil { emit(.stopResync) }
        if state.isServing {
            emit(.runStopScript)
            emit(.removeVirtualIP)
        }
        if state.isServing || state == .second { emit(.unmount) }
        if state.isServing { releaseWitnessLease() }
        resync = nil
        resyncSession = nil
        resyncReceivedAll = false
        aloneWantedSince = nil
    }
}
