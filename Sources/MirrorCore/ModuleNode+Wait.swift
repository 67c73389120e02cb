extension ModuleNode {
    /// WAIT: running, not serving. Accepts the forced starts; everything else is the rules' job.
    mutating func stepWait(_ event: Event) {
        switch event {
        case .command(.prim): acceptPrim()
        case .command(.second): acceptSecond()
        case .command(.swap): emit(.refuse(.swap, reason: "swap is run on the PRIM node"))
        default: break
        }
    }

    /// WAIT rules: follow a serving peer, serve when elected or when the peer is gone and this
    /// copy is up to date, otherwise keep waiting and say why once.
    mutating func waitRules() {
        guard let mine = generations else { return }
        let other = visiblePeer
        if yielding, !(other.map { $0.state.isRunning && $0.mayServe } ?? false) {
            yielding = false
            log("swap-abandoned", "\(config.peer) cannot take the service over: swap abandoned")
        }
        adoptInSyncIfPossible(other)
        guard checkersUp else { return note("checker-down", "waiting: a checker is down") }
        if forcedPrim {
            if let other, other.state.isServing {
                forcedPrim = false
                emit(.refuse(.prim, reason: "\(config.peer) started serving as \(other.state.rawValue) first"))
            } else {
                serveAloneIfAllowed(forced: true, rule: "forced-prim", message: "serving by operator's prim")
                return
            }
        }
        if let other {
            if pendingSecond, let resolution = resolveSecond(against: other) { applySecond(resolution) }
            if other.state.isServing { return joinServingPeer(other) }
            if pendingSecond { return note("second-waits-for-peer-data", "second: waiting for the data of \(config.peer)") }
            switch election(with: other) {
            case .local where !mine.upToDate:
                note("waiting-to-confirm-equal-copies", "waiting for \(config.peer) to confirm that the copies are equal")
            case .local:
                serveAloneIfAllowed(forced: false, rule: "elected", message: "serving: this copy leads (\(decisionText(other)))")
            case .peer:
                note("peer-elected", "waiting for \(config.peer) to serve")
            case .nobody(let rule):
                let refusal = decision(with: other).map { !$0.outcome.localMayLead && !$0.outcome.peerMayLead } ?? false
                note(rule, "nobody may serve automatically (\(decisionText(other)))", refusal: refusal)
            }
        } else if peerGoneLongEnough {
            if pendingSecond { return note("second-waits-for-peer", "second: waiting to see \(config.peer)") }
            if mine.upToDate {
                serveAloneIfAllowed(forced: false, rule: "peer-lost-up-to-date", message: "\(config.peer) absent, this copy is up to date: serving alone")
            } else {
                note("not-up-to-date-waits", "\(config.peer) absent and this copy is not up to date: waiting for it or for prim")
            }
        }
    }

    /// WAIT with a serving peer: become its SECOND if this copy is equal or older, else refuse.
    mutating func joinServingPeer(_ other: Announcement) {
        guard let decision = decision(with: other) else { return note("peer-data-unknown", "waiting for the data state of \(config.peer)") }
        if decision.outcome == .inSync || decision.outcome.receivePlan != nil { return becomeSecond(decision) }
        note(decision.rule, "not following \(config.peer): \(decision.outcome.rawValue); waiting for the operator", refusal: true)
    }

    /// Equal current generations mean equal copies: this copy is up to date as well, provided
    /// the peer's announcement is not older than our own state (it could have started a new
    /// generation since, unseen).
    mutating func adoptInSyncIfPossible(_ other: Announcement?) {
        guard resync == nil, let mine = generations, !mine.upToDate, let other, peerHasSeenOurState,
              let decision = decision(with: other), decision.outcome == .inSync else { return }
        persist(mine.with(upToDate: true))
        log(decision.rule, "copy equal to the copy of \(config.peer): up to date")
    }

    func decisionText(_ other: Announcement) -> String {
        decision(with: other)?.description ?? "data of \(config.peer) unknown"
    }
}
