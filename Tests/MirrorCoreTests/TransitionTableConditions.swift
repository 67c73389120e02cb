import MirrorCore

/// The set-up behind each condition of docs/state-machine.md's transition table, keyed
/// "STATE: condition": each brings node1 into STATE with the condition about to hold.
extension TransitionTableTests {
    typealias H = NodeHarness

    static let outdated = H.inSync.with(upToDate: false)
    static let t = H.timeout

    /// A harness prepared by `body`.
    static func make(witness: Bool = false, loaded: DataGenerations? = H.inSync, _ body: (inout H) -> Void = { _ in }) -> H {
        var h = H(witness: witness, loaded: loaded)
        body(&h)
        return h
    }

    /// The peer's next heartbeat (the row's event) will announce this.
    static func willSay(_ h: inout H, _ state: ModuleState, _ generations: DataGenerations?, mayServe: Bool = true,
                        resyncSession: TickStamp? = nil) {
        h.peerState = state
        h.peerGenerations = generations
        h.peerMayServe = mayServe
        h.peerResyncSession = resyncSession
    }

    static let conditions: [String: () -> H] = stopConditions.merging(waitConditions) { a, _ in a }
        .merging(aloneConditions) { a, _ in a }.merging(primConditions) { a, _ in a }.merging(secondConditions) { a, _ in a }

    static let stopConditions: [String: () -> H] = [
        "STOP: fresh node": { make(loaded: nil) },
        "STOP: data not loaded": { make(loaded: nil) },
        "STOP: peer silent": { make() },
        "STOP: peer serves as PRIM with newer data": { make { $0.peerSays(.prim, H.peerWroteAlone) } },
        "STOP: peer serves as ALONE with equal data": { make { $0.peerSays(.alone, H.inSync) } },
        "STOP: peer serves as ALONE with diverged data": { make(loaded: H.wroteAloneToo) { $0.peerSays(.alone, H.peerWroteAlone) } },
        "STOP: peer visible in STOP, equal data": { make { $0.peerSays(.stop, H.inSync) } },
        "STOP: peer visible in STOP with newer data": { make { $0.peerSays(.stop, H.peerWroteAlone) } },
        "STOP: peer silent, copy outdated": { make(loaded: outdated) },
        "STOP: peer serves as ALONE": { make { $0.peerSays(.alone, H.inSync) } },
        "STOP: peer silent, witness configured": { make(witness: true) },
        "STOP: peer visible in STOP with an outdated copy": { make { $0.peerSays(.stop, outdated) } },
    ]

    static let waitConditions: [String: () -> H] = [
        "WAIT: peer silent until the timeout, copy up to date": { make { $0.startSilent(); $0.silentTicks(t - 1) } },
        "WAIT: peer silent until the timeout, copy outdated": { make(loaded: outdated) { $0.startSilent(); $0.silentTicks(t - 1) } },
        "WAIT: peer silent until the takeover delay, witness configured": {
            make(witness: true) { $0.startSilent(); $0.silentTicks($0.node.config.takeoverTicks - 1) }
        },
        "WAIT: waiting for the witness": {
            make(witness: true) { $0.startSilent(); $0.silentTicks($0.node.config.takeoverTicks) }
        },
        "WAIT: peer serves as PRIM with newer data": { make { $0.startSilent(); willSay(&$0, .prim, H.peerWroteAlone) } },
        "WAIT: peer serves as ALONE with diverged data": {
            make(loaded: H.wroteAloneToo) { $0.startSilent(); willSay(&$0, .alone, H.peerWroteAlone) }
        },
        "WAIT: peer visible in WAIT, equal data": { make { $0.startSilent(); willSay(&$0, .wait, H.inSync) } },
        "WAIT: peer visible in WAIT with newer data": { make { $0.startSilent(); willSay(&$0, .wait, H.peerWroteAlone) } },
        "WAIT: peer visible in WAIT with diverged data": {
            make(loaded: H.wroteAloneToo) { $0.startSilent(); willSay(&$0, .wait, H.peerWroteAlone) }
        },
        "WAIT: pending second, peer serves as ALONE with diverged data": {
            make(loaded: H.wroteAloneToo) { $0.step(.command(.second)); willSay(&$0, .alone, H.peerWroteAlone) }
        },
        "WAIT: pending second, peer visible in WAIT with an outdated copy": {
            make(loaded: H.peerWroteAlone) { $0.step(.command(.second)); willSay(&$0, .wait, outdated) }
        },
        "WAIT: peer silent": { make { $0.startSilent() } },
        "WAIT: a checker down, peer silent": { make { $0.startSilent(); $0.step(.checkerDown("tcp")) } },
        "WAIT: peer seen in WAIT with diverged data": {
            make(loaded: H.wroteAloneToo) { $0.startSilent(); $0.peerSays(.wait, H.peerWroteAlone) }
        },
        "WAIT: a checker down, peer silent for the timeout": {
            make { $0.startSilent(); $0.step(.checkerDown("tcp")); $0.silentTicks(t) }
        },
    ]

    static let aloneConditions: [String: () -> H] = [
        "ALONE: peer joins as SECOND with older data": { make { $0.aloneAfterSilence(); willSay(&$0, .second, outdated, resyncSession: H.peerSession) } },
        "ALONE: peer serves as ALONE with diverged data": { make { $0.aloneAfterSilence(); willSay(&$0, .alone, H.peerWroteAlone) } },
        "ALONE: peer visible in WAIT with diverged data": { make { $0.aloneAfterSilence(); willSay(&$0, .wait, H.peerWroteAlone) } },
        "ALONE: peer silent": { make { $0.aloneAfterSilence() } },
        "ALONE: peer serves as ALONE without hearing this node": {
            make { $0.aloneAfterSilence(); $0.peerHearsUs = false; willSay(&$0, .alone, H.wroteAloneToo) }
        },
        "ALONE: witness configured, lease about to run out": {
            make(witness: true) { $0.aloneWithWitness(); $0.silentTicks(H.witnessTiming.leaseTicks - 1) }
        },
        "ALONE: witness configured, renewal due": { make(witness: true) { $0.aloneWithWitness(); $0.silentTicks(1) } },
        "ALONE: restart budget left": { make { $0.aloneAfterSilence() } },
        "ALONE: restart budget used up": {
            make { $0.aloneAfterSilence(); $0.step(.processDied); $0.step(.processDied) }
        },
    ]

    static let primConditions: [String: () -> H] = [
        "PRIM: resync running": { make { $0.primResyncing() } },
        "PRIM: SECOND silent until the timeout": { make { $0.primInSync(); $0.silentTicks(t - 1) } },
        "PRIM: resync running, SECOND silent until the timeout": { make { $0.primResyncing(); $0.silentTicks(t - 1) } },
        "PRIM: SECOND announces STOP": { make { $0.primInSync(); willSay(&$0, .stop, $0.node.generations?.with(upToDate: false)) } },
        "PRIM: in sync": { make { $0.primInSync() } },
        "PRIM: witness configured, SECOND takes over without hearing this node": {
            make(witness: true) { $0.primInSync(); $0.peerHearsUs = false; $0.ticksHearingPeer(t); willSay(&$0, .alone, H.peerWroteAlone) }
        },
        "PRIM: witness configured, SECOND silent until the timeout": { make(witness: true) { $0.primInSync(); $0.silentTicks(t - 1) } },
        "PRIM: witness configured, SECOND lost, waiting for the witness": {
            make(witness: true) { $0.primInSync(); $0.silentTicks(t) }
        },
        "PRIM: witness configured, SECOND lost, no answer until the deadline": {
            make(witness: true) { $0.primInSync(); $0.silentTicks(t + H.witnessTiming.answerTicks - 1) }
        },
        "PRIM: in sync, restart budget used up": { make { $0.primInSync(); $0.step(.processDied); $0.step(.processDied) } },
    ]

    static let secondConditions: [String: () -> H] = [
        "SECOND: source already finished": {
            make { $0.secondResyncing(); $0.peerSays(.prim, H.peerWroteAlone.resyncFinishedAsSource()) }
        },
        "SECOND: source not finished yet": { make { $0.secondResyncing() } },
        "SECOND: resync received, source announces it finished": {
            make { $0.secondResyncing(); $0.step(.resyncFinished); willSay(&$0, .prim, H.peerWroteAlone.resyncFinishedAsSource()) }
        },
        "SECOND: resync running": { make { $0.secondResyncing() } },
        "SECOND: in sync, PRIM announces a new generation": {
            make { $0.secondInSync(); willSay(&$0, .prim, DataGenerations(current: H.g9, bitmap: H.g2, history: [H.g1], upToDate: true)) }
        },
        "SECOND: in sync, PRIM announces STOP": {
            make { $0.secondInSync(); willSay(&$0, .stop, $0.node.generations?.with(upToDate: false)) }
        },
        "SECOND: in sync, PRIM steps down for a swap": {
            make { $0.secondInSync(); willSay(&$0, .wait, $0.node.generations, mayServe: false) }
        },
        "SECOND: resync running, PRIM announces STOP": { make { $0.secondResyncing(); willSay(&$0, .stop, H.peerWroteAlone) } },
        "SECOND: in sync, PRIM announces diverged data": {
            make { $0.secondInSync(); willSay(&$0, .prim, DataGenerations(current: H.g9, bitmap: H.g1, upToDate: true)) }
        },
        "SECOND: in sync, PRIM silent until the timeout": { make { $0.secondInSync(); $0.silentTicks(t - 1) } },
        "SECOND: resync running, PRIM silent until the timeout": { make { $0.secondResyncing(); $0.silentTicks(t - 1) } },
        "SECOND: in sync, witness configured, PRIM silent until the takeover delay": {
            make(witness: true) { $0.secondInSync(); $0.silentTicks($0.node.config.takeoverTicks - 1) }
        },
        "SECOND: in sync, witness configured, waiting for the witness": {
            make(witness: true) { $0.secondInSync(); $0.silentTicks($0.node.config.takeoverTicks) }
        },
        "SECOND: in sync": { make { $0.secondInSync() } },
    ]
}
