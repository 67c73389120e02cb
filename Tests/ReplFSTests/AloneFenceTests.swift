import Foundation
import Glibc
@testable import ReplFS
import XCTest

/// The fence that holds changes made alone: open, raised (waits), lowered (goes on), refused (EIO).
final class AloneFenceTests: XCTestCase {
    func testAnOpenFenceLetsChangesPassWithoutWaiting() throws {
        let fence = AloneFence()
        XCTAssertFalse(try fence.pass())
        XCTAssertNil(fence.raisedSince)
        XCTAssertFalse(fence.refuseIfRaised(), "an open fence stays open when the node stops serving")
        XCTAssertFalse(try fence.pass())
    }

    func testARaisedFenceHoldsChangesUntilLowered() throws {
        let fence = AloneFence()
        fence.raise()
        XCTAssertNotNil(fence.raisedSince)
        let outcome = passInBackground(fence)
        XCTAssertEqual(outcome.done.wait(timeout: .now() + 0.3), .timedOut, "held while raised")
        XCTAssertTrue(fence.lower())
        XCTAssertEqual(outcome.done.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(outcome.result, .waited)
        XCTAssertFalse(fence.lower(), "lowering an open fence changes nothing")
    }

    func testStoppingToServeFailsTheHeldChangesAndEveryLaterOneUntilTheNextMount() throws {
        let fence = AloneFence()
        fence.raise()
        let outcome = passInBackground(fence)
        XCTAssertEqual(outcome.done.wait(timeout: .now() + 0.3), .timedOut)
        XCTAssertTrue(fence.refuseIfRaised())
        XCTAssertEqual(outcome.done.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(outcome.result, .failed(EIO))
        XCTAssertThrowsError(try fence.pass())
        fence.raise()
        XCTAssertFalse(fence.lower(), "a refusing fence is not reopened by the heartbeats")
        XCTAssertThrowsError(try fence.pass())
        fence.reset()
        XCTAssertFalse(try fence.pass(), "a new mount starts with an open fence")
    }

    private final class Outcome: @unchecked Sendable {
        enum Result: Equatable { case pending, passed, waited, failed(Int32) }
        let done = DispatchSemaphore(value: 0)
        var result = Result.pending
    }

    private func passInBackground(_ fence: AloneFence) -> Outcome {
        let outcome = Outcome()
        Thread {
            do {
                outcome.result = try fence.pass() ? .waited : .passed
            } catch let error as FSError {
                outcome.result = .failed(error.code)
            } catch {
                outcome.result = .failed(-1)
            }
            outcome.done.signal()
        }.start()
        return outcome
    }
}
