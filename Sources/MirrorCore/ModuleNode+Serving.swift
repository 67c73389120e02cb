extension ModuleNode {
    /// Both nodes serve and see each other: the copy that leads keeps serving; with equal copies
    /// the lower node name keeps it; with diverged or unrelated copies both step down.
    mutating func resolveBothServing(_ other: Announcement, _ decision: ConnectDecision) {
        if decision.outcome == .inSync {
            if config.node < config.peer { return note("both-serving-lower-name-keeps", "\(config.peer) also serves the same data: it steps down") }
            return stepDown(rule: "both-serving-lower-name-keeps", message: "\(config.peer) also serves the same data and keeps it")
        }
        if decision.outcome.localMayLead { return note(decision.rule, "\(config.peer) also serves, with older data: it steps down") }
        stepDown(rule: decision.rule, message: "\(config.peer) also serves (\(decision.outcome.rawValue)): stop serving",
                 refusal: !decision.outcome.peerMayLead)
    }

    /// A serving node that hears its peer serve while the peer does not hear it (one-way loss):
    /// the peer took over believing this node gone, and only this node can end the double
    /// service. It steps down; what it changed alone meanwhile stays here for the operator (the
    /// generations show a divergence), and the cluster daemon never acknowledged it (changes
    /// made alone wait until the peer knows its copy is out of date, which it cannot learn here).
    mutating func stepDownIfPeerServesWithoutHearingUs() -> Bool {
        guard let other = peerHeardOneWay, other.state.isServing else { return false }
        stepDown(rule: "peer-serves-without-hearing-us",
                 message: "\(config.peer) serves and does not hear this node (one-way loss): stop serving here")
        return true
    }

    /// A monitored process died: restart it here within the budget, else stop the module here.
    mutating func handleProcessDeath() {
        if processBudget.allowsRestart(afterDeathAt: now) {
            emit(.restartProcess)
            log("process-restarted", "application process died: restarted")
        } else {
            log("process-restart-budget-exhausted",
                "application process died more than \(config.processRestartLimit) times in \(config.processRestartWindowTicks) ticks: stopping here")
            stopModule()
        }
    }
}
