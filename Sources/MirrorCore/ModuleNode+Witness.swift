extension ModuleNode {
    /// Serves alone now if allowed; with a witness, only under a lease for the generation it will
    /// write under, asking for one when due. Returns true if the node now serves alone.
    @discardableResult
    mutating func serveAloneIfAllowed(forced: Bool, rule: String, message: String) -> Bool {
        guard let mine = generations else { return false }
        guard let timing = config.witness else {
            becomeAlone(forced: forced, rule: rule, message: message)
            return true
        }
        let serving = mine.servingGeneration(ifMinting: ids.peek())
        if lease.allows(serving, now: now) {
            becomeAlone(forced: forced, rule: rule, message: message + " (witness agrees)")
            return true
        }
        askWitnessIfDue(serving, forced: forced, timing: timing)
        return false
    }

    /// A serving node renews its lease for its current generation.
    mutating func renewWitnessLease() {
        guard let timing = config.witness, let mine = generations else { return }
        askWitnessIfDue(mine.current, forced: false, timing: timing)
    }

    /// Whether the lease still covers serving alone in the current generation (always without a witness).
    var witnessAllowsServingAlone: Bool {
        guard config.witness != nil, let mine = generations else { return true }
        return lease.allows(mine.current, now: now)
    }

    mutating func releaseWitnessLease() {
        guard config.witness != nil, let mine = generations, let granted = lease.drop() else { return }
        emit(.askWitness(WitnessRequest(kind: .release, node: config.node, stamp: granted,
                                        servingGeneration: mine.current, data: mine, forced: false)))
    }

    private mutating func askWitnessIfDue(_ serving: GenerationID, forced: Bool, timing: WitnessTiming) {
        guard let mine = generations, lease.askIsDue(for: serving, now: now, every: timing.renewTicks) else { return }
        lease.asked(for: serving, at: now)
        emit(.askWitness(WitnessRequest(kind: .serve, node: config.node, stamp: TickStamp(incarnation: incarnation, tick: now),
                                        servingGeneration: serving, data: mine, forced: forced)))
    }
}
