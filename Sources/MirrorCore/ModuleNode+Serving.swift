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
