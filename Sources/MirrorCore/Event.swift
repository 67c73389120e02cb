/// Everything that can happen to one module on one node. Time passes only through `tick`.
public enum Event: Equatable, Sendable {
    /// The persisted generations, read at daemon start (before any `start`).
    case localDataLoaded(DataGenerations)
    /// The data layer persisted these generations itself, in any state: it started a new
    /// generation the moment replication was lost (before writing alone), or finished its side of
    /// a resync. The state machine adopts them as they are (nothing to persist).
    case localDataChanged(DataGenerations)
    case command(Command)
    /// One unit of logical time.
    case tick
    case heartbeat(Heartbeat)
    /// The link to the peer broke (e.g. the replication connection closed): no need to wait for the timeout.
    case peerLost
    /// The data layer finished this node's side of the resync.
    case resyncFinished
    /// The data layer gave up this node's side of the resync.
    case resyncFailed
    case checkerDown(String)
    case checkerUp(String)
    /// A monitored application process died (SafeKit's errd).
    case processDied
    case witnessVerdict(WitnessVerdict)
}
