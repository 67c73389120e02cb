extension ModuleNode {
    /// The checks and bookkeeping common to every state. Returns true when the event is fully
    /// handled here and the state's own function need not see it.
    mutating func applyCommonChecks(_ event: Event) -> Bool {
        switch event {
        case .tick:
            now += 1
            return true
        case .heartbeat(let heartbeat):
            guard heartbeat.from == config.peer else {
                log("unknown-peer", "heartbeat from \(heartbeat.from) ignored: the peer is \(config.peer)")
                return true
            }
            peer.heard(heartbeat, now: now, ourIncarnation: incarnation)
            return true
        case .peerLost:
            peer.broke()
            log("peer-link-broke", "link to \(config.peer) broke")
            return true
        case .checkerDown(let name):
            if checkersDown.insert(name).inserted { log("checker-down", "checker \(name) down") }
            return true
        case .checkerUp(let name):
            if checkersDown.remove(name) != nil { log("checker-up", "checker \(name) up") }
            return true
        case .witnessVerdict(let verdict):
            if let timing = config.witness {
                lease.received(verdict, incarnation: incarnation, now: now, leaseTicks: timing.leaseTicks)
            }
            return true
        case .localDataLoaded(let loaded):
            guard state == .stop else {
                log("data-load-ignored", "local data state ignored: the module is running as \(state.rawValue)")
                return true
            }
            generations = loaded
            log("data-loaded", "local data: \(loaded)")
            return true
        case .localDataChanged(let changed):
            guard changed != generations else { return true }
            generations = changed
            log("data-changed", "local data changed by the data layer: \(changed)")
            return true
        case .command(let command):
            return applyCommonCommandChecks(command)
        case .resyncFinished, .resyncFailed, .processDied:
            return false
        }
    }

    /// Commands whose answer does not depend on the state, or that every state refuses alike.
    private mutating func applyCommonCommandChecks(_ command: Command) -> Bool {
        switch command {
        case .stop:
            if state == .stop { emit(.refuse(.stop, reason: "already stopped")) } else { stopModule() }
            return true
        case .start, .prim, .second:
            if generations == nil {
                emit(.refuse(command, reason: "local data state not loaded yet"))
                return true
            }
            if command != .start, state != .stop, state != .wait {
                emit(.refuse(command, reason: "running as \(state.rawValue): stop the module first"))
                return true
            }
            if command == .start, state != .stop {
                emit(.refuse(.start, reason: "already running as \(state.rawValue)"))
                return true
            }
            return false
        case .restart:
            if !state.isServing {
                emit(.refuse(.restart, reason: "the application is not served here (\(state.rawValue))"))
                return true
            }
            emit(.runStopScript)
            emit(.runStartScript)
            log("restart", "application restarted by the operator")
            return true
        case .swap:
            return false
        }
    }
}
