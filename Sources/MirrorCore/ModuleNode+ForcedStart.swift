/// What an accepted `second` does once the peer is visible.
enum SecondResolution {
    /// The local copy is already equal to or older than the peer's: the normal resync suffices.
    case keepData(ConnectDecision)
    /// The local copy has changes of its own: forget its history so that it receives everything.
    case discardData(ConnectDecision)
    case refuse(String)
}

extension ModuleNode {
    /// `prim` from STOP or WAIT: this node's data becomes the reference (refused while the peer serves).
    mutating func acceptPrim() {
        if let other = visiblePeer, other.state.isServing {
            emit(.refuse(.prim, reason: "\(config.peer) is serving as \(other.state.rawValue): stop it there first"))
            return
        }
        forcedPrim = true
        pendingSecond = false
        yielding = false
        state = .wait
        log("forced-prim", "forced start as primary: the data of \(config.node) becomes the reference")
    }

    /// `second` from STOP or WAIT: take the peer's data, discarding local changes if there are any.
    mutating func acceptSecond() {
        if let other = visiblePeer, let resolution = resolveSecond(against: other) {
            if case .refuse(let reason) = resolution {
                emit(.refuse(.second, reason: reason))
                return
            }
            applySecond(resolution)
        } else {
            pendingSecond = true
            log("second-pending", "forced start as secondary: waiting to see \(config.peer)")
        }
        forcedPrim = false
        state = .wait
    }

    /// Decides what `second` means against the peer's copy (nil while the peer's data is unknown).
    func resolveSecond(against other: Announcement) -> SecondResolution? {
        guard let mine = generations, let theirs = other.generations else { return nil }
        guard theirs.upToDate else {
            return .refuse(mine.upToDate
                ? "this node holds the only up-to-date copy: second would discard it"
                : "the copy of \(config.peer) is not up to date either: use prim on the node holding the reference data")
        }
        let decision = compareGenerations(local: mine, peer: theirs)
        if decision.outcome == .inSync || decision.outcome.receivePlan != nil { return .keepData(decision) }
        return .discardData(decision)
    }

    mutating func applySecond(_ resolution: SecondResolution) {
        pendingSecond = false
        switch resolution {
        case .keepData(let decision):
            log("second-keeps-data", "forced start as secondary: the copy only lacks changes (\(decision))")
        case .discardData(let decision):
            persist(.justCreated)
            log("second-discards-local-changes",
                "forced start as secondary: local changes discarded (\(decision)); full checksum resync from \(config.peer)")
        case .refuse(let reason):
            // Refused once the peer became visible: the node stops rather than run against the
            // operator's wish not to serve here.
            emit(.refuse(.second, reason: reason))
            stopModule()
        }
    }
}
