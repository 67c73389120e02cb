import MirrorCore
import XCTest

/// The generation tuple's transitions, as DRBD defines them.
final class GenerationsTests: XCTestCase {
    private let g1 = GenerationID(0x11), g2 = GenerationID(0x22), g3 = GenerationID(0x33)

    func testStartAloneMintsAndKeepsTheOldCurrentAsBitmap() {
        let connected = DataGenerations(current: g1, history: [g3], upToDate: true)
        XCTAssertEqual(connected.startAlone(newCurrent: g2), DataGenerations(current: g2, bitmap: g1, history: [g3], upToDate: true))
    }

    func testStartAloneAgainKeepsTheSameChangeMap() {
        let alone = DataGenerations(current: g2, bitmap: g1, upToDate: true)
        XCTAssertFalse(alone.mintsWhenAlone)
        XCTAssertEqual(alone.startAlone(newCurrent: g3), alone)
        XCTAssertEqual(alone.servingGeneration(ifMinting: g3), g2)
    }

    func testStartAloneFromNoHistoryStartsAHistory() {
        XCTAssertEqual(DataGenerations.justCreated.startAlone(newCurrent: g1), DataGenerations(current: g1, upToDate: false))
    }

    func testStartAloneKeepsTheUpToDateFlag() {
        XCTAssertFalse(DataGenerations(current: g1, upToDate: false).startAlone(newCurrent: g2).upToDate)
    }

    func testResyncMakesTheTargetInconsistentThenAdoptsTheSourceTuple() {
        let target = DataGenerations(current: g1, upToDate: true)
        let source = DataGenerations(current: g2, bitmap: g1, history: [g3], upToDate: true)
        XCTAssertFalse(target.resyncStarted().upToDate)
        XCTAssertEqual(target.resyncStarted().current, g1)
        let sourceAfter = source.resyncFinishedAsSource()
        XCTAssertEqual(sourceAfter, DataGenerations(current: g2, history: [g1, g3], upToDate: true))
        XCTAssertEqual(DataGenerations.resyncFinished(source: source), sourceAfter)
        XCTAssertEqual(compareGenerations(local: sourceAfter, peer: DataGenerations.resyncFinished(source: source)).outcome, .inSync)
    }

    func testHistoryKeepsTheTwoMostRecent() {
        let source = DataGenerations(current: g3, bitmap: g2, history: [g1, GenerationID(9)], upToDate: true)
        XCTAssertEqual(source.resyncFinishedAsSource().history, [g2, g1])
    }

    func testGenerationIDSourceIsDeterministicAndNeverJustCreated() {
        var a = GenerationIDSource(seed: 42), b = GenerationIDSource(seed: 42)
        for _ in 0..<1000 {
            let peeked = a.peek()
            let next = a.next()
            XCTAssertEqual(peeked, next)
            XCTAssertEqual(next, b.next())
            XCTAssertFalse(next.isJustCreated)
        }
    }
}
