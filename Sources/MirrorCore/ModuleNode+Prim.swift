extension ModuleNode {
    /// PRIM: serving and replicating to the SECOND.
    mutating func stepPrim(_ event: Event) {
        switch event {
        case .processDied:
            handleProcessDeath()
        case .command(.swap):
            swap()
        case .resyncFinished:
            guard resync?.direction == .send, let mine = generations else { return }
            resync = nil
            completedSession = resyncSession
            resyncSession = nil
            persist(mine.resyncFinishedAsSource())
            log("resync-finished", "resync to \(config.peer) finished")
        case .resyncFailed:
            guard resync?.direction == .send else { return }
            resync = nil
            resyncSession = nil
            log("resync-failed", "resync to \(config.peer) failed")
        default:
            break
        }
    }

    /// PRIM rules: keep replicating while the peer is a visible SECOND; otherwise serve alone
    /// (with a witness: once it agrees, and stop serving if it has not agreed in time).
    mutating func primRules() {
        guard checkersUp else { return stepDown(rule: "checker-down", message: "a checker is down: stop serving") }
        if stepDownIfPeerServesWithoutHearingUs() { return }
        if let other = visiblePeer, let decision = decision(with: other) {
            if other.state.isServing { return resolveBothServing(other, decision) }
            if other.state == .second, decision.outcome.localMayLead {
                aloneWantedSince = nil
                renewWitnessLease()
                return serveResyncSession(decision, peer: other)
            }
        }
        let since = aloneWantedSince ?? now
        aloneWantedSince = since
        if serveAloneIfAllowed(forced: false, rule: "prim-lost-peer", message: "\(config.peer) is no longer SECOND: serving alone") { return }
        if let timing = config.witness, now - since >= timing.answerTicks {
            stepDown(rule: "witness-did-not-agree", message: "\(config.peer) lost and the witness did not agree in time: stop serving")
        }
    }

    /// `swap`: hand the service to an up-to-date SECOND; this node waits, then follows it.
    private mutating func swap() {
        guard let other = visiblePeer, other.state == .second else {
            return emit(.refuse(.swap, reason: "swap needs \(config.peer) as an up-to-date SECOND that sees this node"))
        }
        guard resync == nil, other.generations?.upToDate == true, decision(with: other)?.outcome == .inSync else {
            return emit(.refuse(.swap, reason: "\(config.peer) is resynchronising: swap once its copy is up to date (clusterctl status)"))
        }
        guard other.mayServe else {
            return emit(.refuse(.swap, reason: "\(config.peer) may not serve now (a checker is down there)"))
        }
        yielding = true
        stepDown(rule: "swap", message: "swap: handing the service to \(config.peer)")
    }
}
