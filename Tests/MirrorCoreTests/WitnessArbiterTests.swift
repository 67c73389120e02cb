import MirrorCore
import XCTest

/// The witness grants one lease at a time and never lets an older copy serve after a newer one.
final class WitnessArbiterTests: XCTestCase {
    private let g1 = GenerationID(1), g2 = GenerationID(2), g3 = GenerationID(3)

    private func request(_ node: String, tick: Int, serving: GenerationID, data: DataGenerations,
                         forced: Bool = false, kind: WitnessRequestKind = .serve) -> WitnessRequest {
        WitnessRequest(kind: kind, node: node, stamp: TickStamp(incarnation: 7, tick: tick), servingGeneration: serving,
                       data: data, forced: forced)
    }

    func testOneLeaseAtATimeUntilItExpires() {
        var witness = WitnessArbiter(leaseTicks: 10)
        let data = DataGenerations(current: g1, upToDate: true)
        XCTAssertEqual(witness.decide(request("node1", tick: 0, serving: g2, data: data), now: 5)?.mayServe, true)
        XCTAssertEqual(witness.holder(at: 15), "node1")
        XCTAssertEqual(witness.decide(request("node2", tick: 0, serving: g3, data: data, forced: true), now: 15)?.mayServe, false,
                       "even a forced prim waits for the lease")
        XCTAssertNil(witness.holder(at: 16))
        XCTAssertEqual(witness.decide(request("node2", tick: 0, serving: g3, data: data.with(upToDate: true), forced: true), now: 16)?.mayServe,
                       true)
    }

    func testAReleaseFreesTheLeaseOnlyForTheGrantedRequest() {
        var witness = WitnessArbiter(leaseTicks: 10)
        let data = DataGenerations(current: g1, upToDate: true)
        _ = witness.decide(request("node1", tick: 1, serving: g1, data: data), now: 1)
        _ = witness.decide(request("node1", tick: 3, serving: g1, data: data), now: 3)
        XCTAssertNil(witness.decide(request("node1", tick: 1, serving: g1, data: data, kind: .release), now: 4), "stale release")
        XCTAssertEqual(witness.holder(at: 4), "node1")
        _ = witness.decide(request("node1", tick: 3, serving: g1, data: data, kind: .release), now: 5)
        XCTAssertNil(witness.holder(at: 5))
        XCTAssertEqual(witness.decide(request("node2", tick: 1, serving: g1, data: data), now: 6)?.mayServe, true)
    }

    func testACopyWithoutTheLastServedGenerationIsRefusedUnlessForced() {
        var witness = WitnessArbiter(leaseTicks: 10)
        let old = DataGenerations(current: g1, upToDate: true)
        _ = witness.decide(request("node1", tick: 0, serving: g2, data: old), now: 0)
        let stale = request("node2", tick: 0, serving: g3, data: old)
        XCTAssertEqual(witness.decide(stale, now: 20)?.mayServe, false, "node1 served g2, which node2's copy lacks")
        let caughtUp = request("node2", tick: 1, serving: g3, data: DataGenerations(current: g2, history: [g1], upToDate: true))
        XCTAssertEqual(witness.decide(caughtUp, now: 21)?.mayServe, true)
        var other = WitnessArbiter(leaseTicks: 10)
        _ = other.decide(request("node1", tick: 0, serving: g2, data: old), now: 0)
        XCTAssertEqual(other.decide(request("node2", tick: 0, serving: g3, data: old, forced: true), now: 20)?.mayServe, true)
    }
}
