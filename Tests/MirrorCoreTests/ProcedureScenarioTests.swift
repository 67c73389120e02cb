import MirrorCore
import XCTest

/// SafeKit procedures and failure stories, played on two simulated nodes over a working network.
final class ProcedureScenarioTests: XCTestCase {
    private func cluster(witness: WitnessTiming? = nil, seed: UInt64 = 1) -> SimulatedCluster {
        var settings = SimulatedCluster.Settings(witness: witness)
        settings.writeChance = 0.5
        return SimulatedCluster(settings: settings, seed: seed)
    }

    private func assertStates(_ cluster: SimulatedCluster, _ expected: [ModuleState?], _ message: String,
                              file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(cluster.states, expected, "\(message)\n\(cluster.traceReport(last: 25))", file: file, line: line)
        XCTAssertEqual(cluster.violations, [], file: file, line: line)
    }

    /// (STOP, STOP) → start both → (PRIM, SECOND), resync finished, copies equal.
    private func startedPair(witness: WitnessTiming? = nil) -> SimulatedCluster {
        let cluster = cluster(witness: witness)
        cluster.command(0, .start)
        cluster.command(1, .start)
        cluster.run(ticks: 40)
        return cluster
    }

    func testStartingBothNodesGivesOnePrimAndOneSecondInSync() {
        let cluster = startedPair()
        assertStates(cluster, [.prim, .second], "equal copies: the lower name serves")
        XCTAssertEqual(cluster.nodes[0].disk.current, cluster.nodes[1].disk.current)
        XCTAssertEqual(cluster.nodes[0].content, cluster.nodes[1].content)
        XCTAssertTrue(cluster.nodes[0].virtualIP && cluster.nodes[0].mountedReadWrite && !cluster.nodes[1].mountedReadWrite)
    }

    /// The seed's upgrade procedure: each node upgraded alone, node1's data kept as the reference.
    func testUpgradeProcedureWithForcedStarts() {
        let cluster = startedPair()
        cluster.command(1, .stop)
        cluster.run(ticks: 20)
        assertStates(cluster, [.alone, .stop], "node2 stopped: node1 goes on alone")
        cluster.command(0, .stop)
        cluster.run(ticks: 5)
        assertStates(cluster, [.stop, .stop], "both stopped")
        XCTAssertFalse(cluster.command(1, .start).contains { $0.summary == "refuse" })
        cluster.run(ticks: 30)
        assertStates(cluster, [.stop, .wait], "node2's copy is outdated: a plain start waits")
        cluster.command(1, .stop)
        cluster.command(1, .prim)
        cluster.run(ticks: 20)
        assertStates(cluster, [.stop, .alone], "forced start as primary on node2 (version N)")
        cluster.command(1, .stop)
        cluster.run(ticks: 5)
        cluster.command(0, .prim)
        cluster.run(ticks: 20)
        assertStates(cluster, [.alone, .stop], "forced start as primary on node1: its data is the reference")
        let reference = cluster.nodes[0].content
        XCTAssertNotEqual(cluster.nodes[1].content, reference)
        let actions = cluster.command(1, .second)
        XCTAssertTrue(actions.contains(.startResync(ResyncPlan(.receive, .checksum))), "\(actions.map(\.summary))")
        XCTAssertTrue(actions.contains(.persistGenerations(.justCreated)), "node2's divergent changes are discarded")
        cluster.run(ticks: 3)
        assertStates(cluster, [.prim, .second], "node2 resyncs from node1")
        cluster.run(ticks: 30)
        XCTAssertEqual(cluster.nodes[1].disk.current, cluster.nodes[0].disk.current)
        XCTAssertTrue(cluster.nodes[1].disk.upToDate)
        XCTAssertEqual(cluster.nodes[1].content, cluster.nodes[0].content)
        XCTAssertTrue(cluster.nodes[1].currentsSeen.isSuperset(of: [SimulatedCluster.initialGenerations.current]))
    }

    func testPrimaryCrashFailsOverAndTheReturningNodeBecomesSecondWithoutSwitchingBack() {
        let cluster = startedPair()
        let before = cluster.nodes[1].disk.current
        cluster.crash(0)
        cluster.nodes[0].downFor = 0
        cluster.run(ticks: 15)
        assertStates(cluster, [nil, .alone], "node2 took over")
        XCTAssertNotEqual(cluster.nodes[1].disk.current, before, "serving alone starts a new generation")
        XCTAssertEqual(cluster.nodes[1].disk.bitmap, before)
        cluster.boot(0, start: true)
        cluster.run(ticks: 3)
        XCTAssertEqual(cluster.nodes[0].resyncSide?.plan, ResyncPlan(.receive, .changeMap), "only the changes travel")
        cluster.run(ticks: 40)
        assertStates(cluster, [.second, .prim], "no automatic switch back")
        XCTAssertEqual(cluster.nodes[0].content, cluster.nodes[1].content)
        cluster.command(1, .swap)
        cluster.run(ticks: 40)
        assertStates(cluster, [.prim, .second], "swap hands the service back")
        XCTAssertEqual(cluster.nodes[0].content, cluster.nodes[1].content)
    }

    func testSecondThatIsNotUpToDateWaitsUntilForced() {
        var settings = SimulatedCluster.Settings()
        settings.resyncTicks = 1000
        let cluster = SimulatedCluster(settings: settings, seed: 3)
        cluster.command(0, .start)
        cluster.command(1, .start)
        cluster.run(ticks: 20)
        assertStates(cluster, [.prim, .second], "resync running")
        XCTAssertFalse(cluster.nodes[1].disk.upToDate)
        cluster.crash(0)
        cluster.run(ticks: 30)
        assertStates(cluster, [nil, .wait], "a SECOND that is not up to date never serves by itself")
        XCTAssertEqual(cluster.nodes[1].resyncSide == nil, true)
        cluster.command(1, .prim)
        cluster.run(ticks: 2)
        assertStates(cluster, [nil, .alone], "the operator forces it")
    }

    func testPartitionWithoutWitnessDivergesAndWaitsForTheOperator() {
        let cluster = startedPair()
        cluster.network.nodeLinks = [.down, .down]
        cluster.run(ticks: 30)
        assertStates(cluster, [.alone, .alone], "without a witness both serve (documented)")
        cluster.network.nodeLinks = [.up, .up]
        cluster.run(ticks: 30)
        XCTAssertFalse(cluster.nodes.allSatisfy(\.isServing), "they see each other again: not both serving")
        XCTAssertEqual(compareGenerations(local: cluster.nodes[0].disk, peer: cluster.nodes[1].disk).rule, "both-wrote-alone")
        XCTAssertTrue(cluster.nodes.allSatisfy { $0.resyncSide == nil }, "no automatic resync")
        XCTAssertEqual(cluster.violations, [])
        let server = cluster.nodes[0].isServing ? 0 : 1
        cluster.command(1 - server, .stop)
        if !cluster.nodes[server].isServing { cluster.command(server, .prim) }
        cluster.command(1 - server, .second)
        cluster.run(ticks: 40)
        XCTAssertEqual(cluster.states[server], .prim)
        XCTAssertEqual(cluster.states[1 - server], .second)
        XCTAssertEqual(cluster.nodes[0].content, cluster.nodes[1].content)
    }

    func testPartitionWithWitnessKeepsOneServer() {
        let cluster = startedPair(witness: WitnessTiming(answerTicks: 6, leaseTicks: 30, renewTicks: 5))
        assertStates(cluster, [.prim, .second], "pair formed")
        cluster.network.nodeLinks = [.down, .down]
        cluster.run(ticks: 60)
        XCTAssertEqual(cluster.states[0], .alone, "the PRIM keeps serving under the witness's lease")
        XCTAssertFalse(cluster.nodes[1].isServing)
        cluster.network.nodeLinks = [.up, .up]
        cluster.run(ticks: 40)
        assertStates(cluster, [.prim, .second], "the link is back: node2 resyncs from node1")
        XCTAssertEqual(cluster.nodes[0].content, cluster.nodes[1].content)
    }

    func testIsolatedPrimaryStopsServingAndTheWitnessLetsTheSecondTakeOver() {
        let cluster = startedPair(witness: WitnessTiming(answerTicks: 6, leaseTicks: 30, renewTicks: 5))
        cluster.network.nodeLinks = [.down, .down]
        cluster.network.witnessLinks = [.down, .up]
        cluster.run(ticks: 80)
        assertStates(cluster, [.wait, .alone], "node1 cannot reach the witness: node2 serves")
        XCTAssertEqual(cluster.nodes[1].content, cluster.reference, "no acknowledged write lost")
    }

    func testApplicationDyingTooOftenStopsTheModuleAndThePeerTakesOver() {
        let cluster = startedPair()
        for _ in 0..<2 { XCTAssertTrue(cluster.step(0, .processDied).contains(.restartProcess)) }
        cluster.step(0, .processDied)
        cluster.run(ticks: 10)
        assertStates(cluster, [.stop, .alone], "budget used up: node1 stops, node2 takes over")
    }

    func testFailingCheckerMovesTheServiceAndTheNodeRejoinsWhenItRecovers() {
        let cluster = startedPair()
        cluster.step(0, .checkerDown("tcp"))
        cluster.run(ticks: 10)
        assertStates(cluster, [.wait, .alone], "checker down on the PRIM")
        cluster.step(0, .checkerUp("tcp"))
        cluster.run(ticks: 40)
        assertStates(cluster, [.second, .prim], "it rejoins as SECOND")
    }
}
