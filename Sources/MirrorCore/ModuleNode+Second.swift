extension ModuleNode {
    /// SECOND: receiving from the PRIM.
    mutating func stepSecond(_ event: Event) {
        switch event {
        case .command(.swap):
            emit(.refuse(.swap, reason: "swap is run on the PRIM node"))
        case .resyncFinished:
            if resync?.direction == .receive { resyncReceivedAll = true }
        case .resyncFailed:
            guard resync?.direction == .receive else { return }
            resync = nil
            resyncSession = nil
            resyncReceivedAll = false
            log("resync-failed", "resync from \(config.peer) failed: starting again")
        default:
            break
        }
    }

    /// SECOND rules: follow the serving peer; take over when it stops or is lost and this copy is
    /// up to date; a copy that is not up to date never takes over by itself (WAIT).
    mutating func secondRules() {
        guard let mine = generations else { return }
        if let other = visiblePeer {
            if other.state.isServing { return followServingPeer(other) }
            if resync != nil || !mine.upToDate {
                return stepDown(rule: "second-not-up-to-date-waits", message: "\(config.peer) stopped serving and this copy is not up to date")
            }
            if election(with: other) != .local {
                return stepDown(rule: "peer-not-serving", message: "\(config.peer) stopped serving")
            }
            serveAloneIfAllowed(forced: false, rule: "peer-stopped-serving", message: "\(config.peer) stopped serving: taking over")
        } else if peerLost {
            if resync != nil || !mine.upToDate {
                return stepDown(rule: "second-not-up-to-date-waits", message: "\(config.peer) lost and this copy is not up to date")
            }
            guard checkersUp else { return stepDown(rule: "checker-down", message: "\(config.peer) lost and a checker is down") }
            if peerGoneLongEnough {
                serveAloneIfAllowed(forced: false, rule: "failover", message: "\(config.peer) lost: taking over")
            }
        }
    }

    /// SECOND of a serving peer: resync when the copies differ, adopt the source's generations
    /// at the end, refuse to follow a copy that diverged.
    private mutating func followServingPeer(_ other: Announcement) {
        guard let mine = generations, let decision = decision(with: other) else { return }
        if resync != nil {
            guard resyncReceivedAll, let source = other.generations, source.bitmap == nil else { return }
            resync = nil
            resyncSession = nil
            resyncReceivedAll = false
            persist(DataGenerations.resyncFinished(source: source))
            return log("resync-finished", "resync from \(config.peer) finished: up to date")
        }
        if decision.outcome == .inSync { return adoptInSyncIfPossible(other) }
        if let plan = decision.outcome.receivePlan {
            persist(mine.resyncStarted())
            startReceiving(plan)
            return log(decision.rule, "\(config.peer) has newer data: resync \(plan)")
        }
        stepDown(rule: decision.rule, message: "not following \(config.peer): \(decision.outcome.rawValue)", refusal: true)
    }
}
