/// The state machine of one module on one node: a value with one pure entry point, ``step(_:)``.
///
/// It performs no I/O and has no clock: time passes through `tick` events, randomness comes from
/// the injected ``GenerationIDSource`` seed and `incarnation`. Each node runs its own instance;
/// the two only exchange heartbeats (announced state, generations, echo).
///
/// `step` first applies the checks common to every state (bookkeeping of time, heartbeats,
/// checkers and witness verdicts, commands valid everywhere), then hands the event to the current
/// state's function (`stepStop`, `stepWait`, `stepAlone`, `stepPrim`, `stepSecond`), then lets
/// the state's rules react to what is now known until the state is stable, and finally announces
/// the state when it changed or a heartbeat is due.
public struct ModuleNode: Sendable {
    public let config: ModuleConfig
    /// Random per daemon start; tells this run's heartbeats and witness requests from older ones.
    public let incarnation: UInt64
    public internal(set) var state: ModuleState = .stop
    /// The generations as last persisted (nil until loaded).
    public internal(set) var generations: DataGenerations?
    /// Ticks since this instance was created.
    public internal(set) var now = 0

    var ids: GenerationIDSource
    var peer: PeerLink
    var lease = WitnessLease()
    var checkersDown: Set<String> = []
    var processBudget: ProcessRestartBudget
    /// This node's side of the running resync.
    var resync: ResyncPlan?
    /// The session of the running resync (the target's start stamp, on both sides).
    var resyncSession: TickStamp?
    /// Source side: the last session that finished.
    var completedSession: TickStamp?
    /// Target side: the data layer finished; waiting to adopt the source's final tuple.
    var resyncReceivedAll = false
    /// An accepted `prim` not carried out yet.
    var forcedPrim = false
    /// An accepted `second` waiting to see the peer.
    var pendingSecond = false
    /// After `swap`: leave the service to the peer.
    var yielding = false
    /// PRIM: the tick it started needing to serve alone (peer lost or no longer its SECOND).
    var aloneWantedSince: Int?
    var lastAnnounced: Announcement?
    /// The tick at which the announcement last changed.
    var announcementChangedAt = 0
    var lastHeartbeatSent: Int?
    /// The rule of the last "still waiting" note, so that it is logged once, not every tick.
    var lastNote: String?
    var output: [Action] = []

    public init(config: ModuleConfig, incarnation: UInt64, generationSeed: UInt64) {
        self.config = config
        self.incarnation = incarnation
        ids = GenerationIDSource(seed: generationSeed)
        peer = PeerLink(listeningSince: 0)
        processBudget = ProcessRestartBudget(limit: config.processRestartLimit, windowTicks: config.processRestartWindowTicks)
    }

    /// Feeds one event; returns what the daemon must do, in order.
    public mutating func step(_ event: Event) -> [Action] {
        output = []
        if !applyCommonChecks(event) {
            switch state {
            case .stop: stepStop(event)
            case .wait: stepWait(event)
            case .alone: stepAlone(event)
            case .prim: stepPrim(event)
            case .second: stepSecond(event)
            }
        }
        settle()
        announceIfNeeded(heartbeatDue: event == .tick)
        defer { output = [] }
        return output
    }

    /// Whether the application is served here (PRIM or ALONE).
    public var isServing: Bool { state.isServing }

    /// What this node tells its peer now.
    public var announcement: Announcement {
        Announcement(state: state, generations: generations, mayServe: checkersDown.isEmpty && !yielding && !pendingSecond,
                     resyncSession: resync?.direction == .receive ? resyncSession : nil)
    }

    /// Lets the current state's rules react until the state no longer changes.
    mutating func settle() {
        for _ in 0..<4 {
            let before = state
            switch state {
            case .stop: break
            case .wait: waitRules()
            case .alone: aloneRules()
            case .prim: primRules()
            case .second: secondRules()
            }
            if state == before { return }
        }
    }

    mutating func announceIfNeeded(heartbeatDue tick: Bool) {
        let current = announcement
        let due = tick && now - (lastHeartbeatSent ?? Int.min / 2) >= config.heartbeatIntervalTicks
        guard current != lastAnnounced || due else { return }
        if current != lastAnnounced { announcementChangedAt = now }
        lastAnnounced = current
        lastHeartbeatSent = now
        let stamp = TickStamp(incarnation: incarnation, tick: now)
        emit(.announce(Heartbeat(from: config.node, announcement: current, stamp: stamp, echo: peer.newestStamp)))
    }

    mutating func emit(_ action: Action) { output.append(action) }

    mutating func log(_ rule: String, _ message: String) { emit(.log(rule: rule, message: message)) }

    /// Logs a reason for staying put once, until another reason or another state.
    mutating func note(_ rule: String, _ message: String, refusal: Bool = false) {
        guard lastNote != rule else { return }
        lastNote = rule
        log(rule, message)
        if refusal { emit(.refuse(nil, reason: message.contains("rule \(rule)") ? message : "\(message) (rule \(rule))")) }
    }
}
