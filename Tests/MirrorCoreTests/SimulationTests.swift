import MirrorCore
import XCTest

/// FoundationDB-style seeded simulation: thousands of random schedules of faults and commands on
/// two nodes (with and without a witness); the invariants are checked after every step. Runs are
/// deterministic: a failing seed is replayed with a trace, and the seed is printed.
final class SimulationTests: XCTestCase {
    static let schedulesPerConfiguration = 1500
    static let ticksPerSchedule = 200

    func testRandomSchedulesWithoutWitness() {
        runSchedules(witness: nil, firstSeed: 1)
    }

    func testRandomSchedulesWithWitness() {
        runSchedules(witness: WitnessTiming(answerTicks: 6, leaseTicks: 30, renewTicks: 5), firstSeed: 1_000_001)
    }

    /// Replays one schedule; returns the violations and the end of its trace.
    static func replay(seed: UInt64, witness: WitnessTiming?, tracing: Bool = false) -> (violations: [String], trace: String, cluster: SimulatedCluster) {
        var settings = SimulatedCluster.Settings(witness: witness)
        settings.recordsTrace = tracing
        settings.crashBetweenActions = 0.01
        settings.writeChance = 0.3
        settings.resyncFailureChance = 0.05
        let cluster = SimulatedCluster(settings: settings, seed: seed)
        cluster.command(0, .start)
        cluster.command(1, .start)
        for _ in 0..<ticksPerSchedule where cluster.violations.isEmpty { cluster.faultyTick() }
        return (cluster.violations, cluster.violations.isEmpty ? "" : cluster.traceReport(), cluster)
    }

    private func runSchedules(witness: WitnessTiming?, firstSeed: UInt64) {
        var served = 0, failovers = 0
        for seed in firstSeed..<(firstSeed + UInt64(Self.schedulesPerConfiguration)) {
            let run = Self.replay(seed: seed, witness: witness)
            if !run.violations.isEmpty {
                let traced = Self.replay(seed: seed, witness: witness, tracing: true)
                XCTFail("seed \(seed) (witness: \(witness != nil)): \(run.violations.first!)\n\(traced.trace)")
                return
            }
            if run.cluster.nodes.contains(where: \.isServing) { served += 1 }
            if run.cluster.nodes.allSatisfy({ $0.currentsSeen.count > 1 }) { failovers += 1 }
        }
        // The schedules must exercise the machine, not just leave it waiting.
        XCTAssertGreaterThan(served, Self.schedulesPerConfiguration / 3)
        XCTAssertGreaterThan(failovers, Self.schedulesPerConfiguration / 10)
    }
}
