extension ModuleNode {
    /// The peer's announcement if the peer is visible (heard, and hearing us, within the timeout).
    var visiblePeer: Announcement? {
        peer.visibleAnnouncement(now: now, timeout: config.peerTimeoutTicks)
    }

    /// The peer is not visible and has been silent long enough for this node to take over
    /// (with a witness: long enough that a PRIM which lost us has stopped serving or holds the lease).
    var peerGoneLongEnough: Bool {
        peer.isLost(now: now, timeout: config.peerTimeoutTicks) && peer.silence(now: now) >= config.takeoverTicks
    }

    /// The peer is not visible and the timeout has passed since this node started listening.
    var peerLost: Bool { peer.isLost(now: now, timeout: config.peerTimeoutTicks) }

    /// The peer's announcement if it is heard but does not hear us (one-way loss).
    var peerHeardOneWay: Announcement? {
        peer.oneWayAnnouncement(now: now, timeout: config.peerTimeoutTicks)
    }

    var checkersUp: Bool { checkersDown.isEmpty }

    /// Whether the peer's announcements already take our current state into account.
    var peerHasSeenOurState: Bool { peer.hasHeardUs(after: announcementChangedAt) }

    /// Whether the peer cannot serve without this node's changes: its newest announcement counts
    /// its copy out of date (it will not serve without a resync from here, unless an operator
    /// forces it: only a resync from here makes it up to date again), or it already holds this
    /// node's current generation (a resync from here completed). The cluster daemon then lets
    /// changes made alone be acknowledged.
    public var peerCannotServeWithoutOurChanges: Bool {
        guard let mine = generations, let theirs = peer.announcement?.generations else { return false }
        return !theirs.upToDate || theirs.current == mine.current
    }

    /// The connect decision against the peer's announced generations (nil if either is unknown).
    func decision(with peer: Announcement) -> ConnectDecision? {
        guard let mine = generations, let theirs = peer.generations else { return nil }
        return compareGenerations(local: mine, peer: theirs)
    }

    /// Who should serve when both see each other and neither serves.
    func election(with peer: Announcement) -> ServingChoice {
        guard let mine = generations, let theirs = peer.generations, let decision = decision(with: peer) else {
            return .nobody(rule: "peer-data-unknown")
        }
        let me = ElectionCandidate(name: config.node, running: state.isRunning, mayServe: announcement.mayServe, upToDate: mine.upToDate)
        let them = ElectionCandidate(name: config.peer, running: peer.state.isRunning, mayServe: peer.mayServe, upToDate: theirs.upToDate)
        return electServer(local: me, peer: them, decision: decision)
    }
}
