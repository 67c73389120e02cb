import MirrorCore
import XCTest

/// Behaviour of the state machine that the transition table does not show: refusal reasons,
/// liveness through echoes, stale inputs, ordering of actions.
final class StateMachineTests: XCTestCase {
    private func refusals(_ actions: [Action]) -> [String] {
        actions.compactMap { if case .refuse(_, let reason) = $0 { return reason } else { return nil } }
    }

    func testPrimIsRefusedWhileThePeerIsPrim() {
        var h = NodeHarness()
        h.peerSays(.prim, NodeHarness.inSync)
        XCTAssertEqual(refusals(h.step(.command(.prim))), ["node2 is serving as PRIM: stop it there first"])
        XCTAssertEqual(h.state, .stop)
    }

    func testSecondIsRefusedOnTheOnlyUpToDateCopy() {
        var h = NodeHarness()
        h.peerSays(.wait, NodeHarness.inSync.with(upToDate: false))
        XCTAssertEqual(refusals(h.step(.command(.second))), ["this node holds the only up-to-date copy: second would discard it"])
    }

    func testADivergenceIsRefusedWithTheRuleName() {
        var h = NodeHarness(loaded: NodeHarness.wroteAloneToo)
        h.startSilent()
        let reasons = refusals(h.peerSays(.alone, NodeHarness.peerWroteAlone))
        XCTAssertEqual(reasons.count, 1)
        XCTAssertTrue(reasons[0].contains("both-wrote-alone"), reasons[0])
        XCTAssertEqual(refusals(h.peerSays(.alone, NodeHarness.peerWroteAlone)), [], "said once, not on every heartbeat")
    }

    func testHeartbeatsFromAnUnknownNodeAreIgnored() {
        var h = NodeHarness()
        let stranger = Heartbeat(from: "node3", announcement: Announcement(state: .prim, generations: NodeHarness.peerWroteAlone, mayServe: true),
                                 stamp: TickStamp(incarnation: 5, tick: 1), echo: h.newestStamp)
        XCTAssertEqual(h.step(.heartbeat(stranger)).map(\.summary), ["log(unknown-peer)"])
        h.step(.command(.start))
        XCTAssertEqual(h.state, .wait)
    }

    func testAPeerThatDoesNotEchoUsIsNotVisible() {
        var h = NodeHarness()
        h.startSilent()
        let deaf = Heartbeat(from: "node2", announcement: Announcement(state: .prim, generations: NodeHarness.peerWroteAlone, mayServe: true),
                             stamp: TickStamp(incarnation: 2, tick: 1), echo: nil)
        h.step(.heartbeat(deaf))
        XCTAssertEqual(h.state, .wait, "the peer does not hear us: the link is broken one way")
        h.peerSays(.prim, NodeHarness.peerWroteAlone)
        XCTAssertEqual(h.state, .second)
    }

    func testAVerdictForAnotherIncarnationIsIgnored() {
        var h = NodeHarness(witness: true)
        h.startSilent()
        h.silentTicks(h.node.config.takeoverTicks)
        let request = h.lastWitnessRequest!
        let stale = WitnessVerdict(mayServe: true, request: TickStamp(incarnation: 99, tick: request.stamp.tick),
                                   servingGeneration: request.servingGeneration)
        h.step(.witnessVerdict(stale))
        XCTAssertEqual(h.state, .wait)
        h.step(h.witnessVerdict(true))
        XCTAssertEqual(h.state, .alone)
    }

    func testPersistComesBeforeMountAndVirtualIPWhenServingStarts() {
        var h = NodeHarness()
        h.startSilent()
        h.silentTicks(NodeHarness.timeout - 1)
        let kinds = h.step(.tick).map(\.summary)
        XCTAssertEqual(Array(kinds.prefix(4)), ["persist", "mount-rw", "add-vip", "start-script"])
    }

    func testServingAloneStartsANewGenerationWithTheOldOneAsBitmap() {
        var h = NodeHarness()
        h.aloneAfterSilence()
        XCTAssertEqual(h.node.generations?.bitmap, NodeHarness.g1)
        XCTAssertNotEqual(h.node.generations?.current, NodeHarness.g1)
        XCTAssertEqual(h.node.generations?.upToDate, true)
    }

    func testProcessRestartBudgetIsPerWindow() {
        var h = NodeHarness()
        h.aloneAfterSilence()
        for _ in 0..<2 { XCTAssertTrue(h.step(.processDied).contains(.restartProcess)) }
        h.silentTicks(20)
        XCTAssertTrue(h.step(.processDied).contains(.restartProcess), "older deaths left the window")
        XCTAssertEqual(h.state, .alone)
    }

    func testStopWhileThePeerRunsMarksTheCopyOutdated() {
        var h = NodeHarness()
        h.secondInSync()
        h.step(.command(.stop))
        XCTAssertEqual(h.node.generations?.upToDate, false)
        h.step(.command(.start))
        h.silentTicks(NodeHarness.timeout + 1)
        XCTAssertEqual(h.state, .wait, "the peer went on alone: this copy may not serve by itself")
    }
}
