/// A point in one node's logical time: its incarnation (random per daemon start) and tick count.
///
/// Stamps from another incarnation are never compared by tick: a restarted node starts again at 0.
public struct TickStamp: Equatable, Hashable, Sendable {
    public var incarnation: UInt64
    public var tick: Int

    public init(incarnation: UInt64, tick: Int) {
        self.incarnation = incarnation
        self.tick = tick
    }
}

/// What a node tells its peer about a module: state, generations, and whether it may serve.
public struct Announcement: Equatable, Sendable {
    public var state: ModuleState
    /// Nil until the local data state has been loaded.
    public var generations: DataGenerations?
    /// Whether this node is a candidate to serve: checkers up, not handing over (swap), not
    /// waiting to discard its data (`second`).
    public var mayServe: Bool
    /// While this node receives a resync: the stamp at which it started it. The source serves
    /// each session once, so a stale announcement never restarts a finished resync.
    public var resyncSession: TickStamp?

    public init(state: ModuleState, generations: DataGenerations?, mayServe: Bool, resyncSession: TickStamp? = nil) {
        self.state = state
        self.generations = generations
        self.mayServe = mayServe
        self.resyncSession = resyncSession
    }
}

/// One heartbeat of one module, sent on every configured path.
///
/// `echo` returns the newest stamp the sender has received from the receiver: the receiver then
/// knows the sender hears it, which makes loss in one direction visible on both sides.
public struct Heartbeat: Equatable, Sendable {
    public var from: String
    public var announcement: Announcement
    public var stamp: TickStamp
    public var echo: TickStamp?

    public init(from: String, announcement: Announcement, stamp: TickStamp, echo: TickStamp?) {
        self.from = from
        self.announcement = announcement
        self.stamp = stamp
        self.echo = echo
    }
}
