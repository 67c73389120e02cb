import MirrorCore
import XCTest
import TestSupport

/// Every row of the connect decision table, from both sides.
final class ConnectDecisionTests: XCTestCase {
    private let g1 = GenerationID(0x11), g2 = GenerationID(0x22), g3 = GenerationID(0x33), g4 = GenerationID(0x44)
    private let g5 = GenerationID(0x55), g6 = GenerationID(0x66)

    /// (rule, local, peer, expected outcome from the local side).
    private var examples: [(String, DataGenerations, DataGenerations, ConnectOutcome)] {
        [
            ("both-just-created", .justCreated, .justCreated, .noReference),
            ("my-current-just-created", .justCreated, DataGenerations(current: g1, upToDate: true), .behindUnknownChanges),
            ("peer-current-just-created", DataGenerations(current: g1, upToDate: true), .justCreated, .peerBehindUnknownChanges),
            ("equal-current", DataGenerations(current: g2, history: [g1], upToDate: true),
             DataGenerations(current: g2, history: [g1], upToDate: false), .inSync),
            ("circular-history", DataGenerations(current: g2, bitmap: g1, upToDate: true),
             DataGenerations(current: g1, bitmap: g2, upToDate: true), .unrelated),
            // I served alone since g1; the peer stayed in g1.
            ("peer-current-is-my-bitmap", DataGenerations(current: g2, bitmap: g1, upToDate: true),
             DataGenerations(current: g1, upToDate: true), .sourceWithChangeMap),
            ("my-current-is-peer-bitmap", DataGenerations(current: g1, upToDate: true),
             DataGenerations(current: g2, bitmap: g1, upToDate: true), .targetWithChangeMap),
            // Both served alone since g1.
            ("both-wrote-alone", DataGenerations(current: g2, bitmap: g1, upToDate: true),
             DataGenerations(current: g3, bitmap: g1, upToDate: true), .divergence),
            // The peer went alone twice since my generation: its change map no longer covers mine.
            ("my-current-in-peer-history", DataGenerations(current: g1, upToDate: true),
             DataGenerations(current: g3, bitmap: g2, history: [g1], upToDate: true), .behindUnknownChanges),
            ("peer-current-in-my-history", DataGenerations(current: g3, bitmap: g2, history: [g1], upToDate: true),
             DataGenerations(current: g1, upToDate: true), .peerBehindUnknownChanges),
            // Each wrote alone from different points of a shared past.
            ("common-ancestor", DataGenerations(current: g4, bitmap: g2, history: [g1], upToDate: true),
             DataGenerations(current: g5, bitmap: g3, history: [g1], upToDate: true), .divergence),
            ("unrelated-data", DataGenerations(current: g4, bitmap: g3, upToDate: true),
             DataGenerations(current: g6, bitmap: g5, upToDate: true), .unrelated),
        ]
    }

    func testEveryRuleHasAnExampleThatSelectsIt() {
        XCTAssertEqual(Set(examples.map(\.0)), Set(connectRules.map(\.name)))
        for (rule, local, peer, outcome) in examples {
            let decision = compareGenerations(local: local, peer: peer)
            XCTAssertEqual(decision.rule, rule)
            XCTAssertEqual(decision.outcome, outcome, rule)
            XCTAssertEqual(connectRules.first { $0.name == rule }?.outcome, outcome, rule)
        }
    }

    func testEveryRuleIsSymmetric() {
        for (rule, local, peer, _) in examples {
            let mine = compareGenerations(local: local, peer: peer)
            let theirs = compareGenerations(local: peer, peer: local)
            XCTAssertEqual(theirs.outcome, mine.outcome.mirrored, "rule \(rule) seen from the peer: \(theirs)")
        }
    }

    func testRandomTuplesDecideSymmetrically() {
        var random = SeededGenerator(seed: 7)
        let pool = (1...5).map { GenerationID(UInt64($0)) }
        func tuple() -> DataGenerations {
            let current = random.chance(0.1) ? GenerationID.justCreated : random.pick(pool)
            let bitmap = random.chance(0.5) ? random.pick(pool) : nil
            let history = (0..<random.int(in: 0...2)).map { _ in random.pick(pool) }
            return DataGenerations(current: current, bitmap: bitmap, history: history, upToDate: random.chance(0.5))
        }
        for _ in 0..<5000 {
            let a = tuple(), b = tuple()
            let ab = compareGenerations(local: a, peer: b), ba = compareGenerations(local: b, peer: a)
            XCTAssertEqual(ba.outcome, ab.outcome.mirrored, "\(a) vs \(b): \(ab) / \(ba)")
        }
    }

    func testOutcomesThatAllowAResyncNameItsDirectionAndKind() {
        XCTAssertEqual(ConnectOutcome.sourceWithChangeMap.sendPlan, ResyncPlan(.send, .changeMap))
        XCTAssertEqual(ConnectOutcome.peerBehindUnknownChanges.sendPlan, ResyncPlan(.send, .checksum))
        XCTAssertEqual(ConnectOutcome.targetWithChangeMap.receivePlan, ResyncPlan(.receive, .changeMap))
        XCTAssertEqual(ConnectOutcome.behindUnknownChanges.receivePlan, ResyncPlan(.receive, .checksum))
        for outcome in [ConnectOutcome.inSync, .divergence, .unrelated, .noReference] {
            XCTAssertNil(outcome.sendPlan)
            XCTAssertNil(outcome.receivePlan)
        }
    }
}
