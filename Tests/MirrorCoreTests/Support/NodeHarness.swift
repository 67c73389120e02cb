import MirrorCore

/// One real ``ModuleNode`` ("node1") facing a scripted peer ("node2") whose heartbeats the test
/// writes: the peer's state, generations and candidacy are set directly, and every heartbeat
/// echoes node1's newest one, as a live peer would.
struct NodeHarness {
    static let timeout = 4
    static let witnessTiming = WitnessTiming(answerTicks: 3, leaseTicks: 10, renewTicks: 2)
    static let g1 = GenerationID(0x11), g2 = GenerationID(0x22), g3 = GenerationID(0x33), g9 = GenerationID(0x99)
    /// node1's copy in the common starting point: generation g1, up to date.
    static let inSync = DataGenerations(current: g1, upToDate: true)

    var node: ModuleNode
    var peerState = ModuleState.stop
    var peerGenerations: DataGenerations? = NodeHarness.inSync
    var peerMayServe = true
    var peerResyncSession: TickStamp?
    /// false: the peer's heartbeats echo nothing (it does not hear node1: one-way loss).
    var peerHearsUs = true
    private var peerTick = 0
    private(set) var newestStamp: TickStamp?
    private(set) var lastWitnessRequest: WitnessRequest?
    private(set) var trace: [Action] = []

    init(witness: Bool = false, loaded: DataGenerations? = NodeHarness.inSync) {
        let config = ModuleConfig(node: "node1", peer: "node2", heartbeatIntervalTicks: 1, peerTimeoutTicks: Self.timeout,
                                  witness: witness ? Self.witnessTiming : nil, processRestartLimit: 2, processRestartWindowTicks: 20)
        node = ModuleNode(config: config, incarnation: 1, generationSeed: 1)
        if let loaded { step(.localDataLoaded(loaded)) } else { step(.tick) }
    }

    var state: ModuleState { node.state }

    @discardableResult
    mutating func step(_ event: Event) -> [Action] {
        let actions = node.step(event)
        for action in actions {
            if case .announce(let heartbeat) = action { newestStamp = heartbeat.stamp }
            if case .askWitness(let request) = action, request.kind == .serve { lastWitnessRequest = request }
        }
        trace += actions
        return actions
    }

    /// The peer's next heartbeat, echoing node1's newest stamp (unless ``peerHearsUs`` is false).
    mutating func peerHeartbeat() -> Event {
        peerTick += 1
        let announcement = Announcement(state: peerState, generations: peerGenerations, mayServe: peerMayServe,
                                        resyncSession: peerResyncSession)
        return .heartbeat(Heartbeat(from: "node2", announcement: announcement,
                                    stamp: TickStamp(incarnation: 2, tick: peerTick), echo: peerHearsUs ? newestStamp : nil))
    }

    /// The peer announces `state` with `generations` (and is heard).
    @discardableResult
    mutating func peerSays(_ state: ModuleState, _ generations: DataGenerations? = NodeHarness.inSync, mayServe: Bool = true,
                           resyncSession: TickStamp? = nil) -> [Action] {
        peerState = state
        peerGenerations = generations
        peerMayServe = mayServe
        peerResyncSession = resyncSession
        return step(peerHeartbeat())
    }

    /// `count` ticks during which the peer is silent.
    mutating func silentTicks(_ count: Int) {
        for _ in 0..<count { step(.tick) }
    }

    /// `count` ticks, each followed by a heartbeat of the peer in its current announced state.
    mutating func ticksHearingPeer(_ count: Int) {
        for _ in 0..<count {
            step(.tick)
            step(peerHeartbeat())
        }
    }

    /// The witness's verdict on node1's last `serve` request.
    func witnessVerdict(_ mayServe: Bool) -> Event {
        let request = lastWitnessRequest!
        return .witnessVerdict(WitnessVerdict(mayServe: mayServe, request: request.stamp, servingGeneration: request.servingGeneration))
    }

    // MARK: - Reaching states

    /// WAIT with the peer never heard.
    mutating func startSilent() { step(.command(.start)) }

    /// ALONE after the peer stayed silent for the timeout (no witness), in a new generation.
    mutating func aloneAfterSilence() {
        startSilent()
        silentTicks(Self.timeout)
    }

    /// ALONE with a witness lease, after the peer stayed silent for the takeover delay.
    mutating func aloneWithWitness() {
        startSilent()
        silentTicks(node.config.takeoverTicks)
        step(witnessVerdict(true))
    }

    /// PRIM with the peer as its SECOND, resyncing from node1's change map.
    mutating func primResyncing() {
        if node.config.witness == nil { aloneAfterSilence() } else { aloneWithWitness() }
        peerSays(.second, Self.inSync.with(upToDate: false), resyncSession: Self.peerSession)
    }

    /// The resync session the scripted peer announces as a target.
    static let peerSession = TickStamp(incarnation: 2, tick: 1)

    /// PRIM with the resync finished on both sides: the pair is in sync.
    mutating func primInSync() {
        primResyncing()
        step(.resyncFinished)
        peerSays(.second, node.generations)
    }

    /// The peer's copy after it served alone since node1's g1 (it is newer).
    static let peerWroteAlone = DataGenerations(current: g2, bitmap: g1, upToDate: true)
    /// A copy that served alone since g1 separately from node1 (diverged from peerWroteAlone).
    static let wroteAloneToo = DataGenerations(current: g3, bitmap: g1, upToDate: true)

    /// SECOND of a PRIM that holds newer data, resyncing from its change map.
    mutating func secondResyncing() {
        peerSays(.prim, Self.peerWroteAlone)
        step(.command(.start))
    }

    /// SECOND in sync with its PRIM.
    mutating func secondInSync() {
        secondResyncing()
        step(.resyncFinished)
        peerSays(.prim, Self.peerWroteAlone.resyncFinishedAsSource())
    }
}
