/// Who should serve when both nodes see each other and neither serves yet.
enum ServingChoice: Equatable {
    case local
    case peer
    /// Nobody may serve automatically; the rule says why.
    case nobody(rule: String)
}

/// One side of an election, as the local node knows it.
struct ElectionCandidate {
    var name: String
    var running: Bool
    var mayServe: Bool
    var upToDate: Bool
}

/// Chooses who serves from the data decision and both candidates, symmetrically: the peer running
/// the same function on the mirrored inputs reaches the mirrored choice.
///
/// A copy may lead only if it is equal to or newer than the other one, and (unless both are equal)
/// is flagged up to date; with both eligible, the lower node name wins.
func electServer(local: ElectionCandidate, peer: ElectionCandidate, decision: ConnectDecision) -> ServingChoice {
    func eligible(_ c: ElectionCandidate, leads: Bool) -> Bool {
        c.running && c.mayServe && leads && (decision.outcome == .inSync || c.upToDate)
    }
    let localEligible = eligible(local, leads: decision.outcome.localMayLead)
    let peerEligible = eligible(peer, leads: decision.outcome.peerMayLead)
    switch (localEligible, peerEligible) {
    case (true, true): return local.name < peer.name ? .local : .peer
    case (true, false): return .local
    case (false, true): return .peer
    case (false, false):
        return .nobody(rule: decision.outcome.localMayLead || decision.outcome.peerMayLead ? "no-eligible-node" : decision.rule)
    }
}
