extension ModuleNode {
    /// ALONE: serving without the peer.
    mutating func stepAlone(_ event: Event) {
        switch event {
        case .processDied: handleProcessDeath()
        case .command(.swap): emit(.refuse(.swap, reason: "swap needs (PRIM, SECOND); this node is ALONE"))
        default: break
        }
    }

    /// ALONE rules: stop on a failing checker, an expired witness lease or a peer that serves
    /// without hearing this node; become PRIM when the peer joins as SECOND; leave the service
    /// to a peer that holds newer data.
    mutating func aloneRules() {
        guard checkersUp else { return stepDown(rule: "checker-down", message: "a checker is down: stop serving") }
        guard witnessAllowsServingAlone else { return stepDown(rule: "witness-lease-expired", message: "the witness lease ran out: stop serving") }
        if stepDownIfPeerServesWithoutHearingUs() { return }
        renewWitnessLease()
        guard let other = visiblePeer, let decision = decision(with: other) else { return }
        if other.state.isServing { return resolveBothServing(other, decision) }
        if other.state == .second, decision.outcome.localMayLead { return becomePrim(decision, peer: other) }
        if decision.outcome.peerMayLead, !decision.outcome.localMayLead {
            return stepDown(rule: decision.rule, message: "\(config.peer) holds newer data: stop serving")
        }
        if !decision.outcome.localMayLead {
            note(decision.rule, "\(config.peer) holds other changes (\(decision.outcome.rawValue)): it waits for the operator")
        }
    }
}
