import ControlChannel
import Foundation
import XCTest

final class MessageTests: XCTestCase {
    func testRequestRoundTripAndExactLine() throws {
        let request = ControlRequest(verb: "checker", module: "AM", arguments: ["disable", "pg-port"], yes: false, host: "node2")
        let line = try ControlJSON.line(request)
        XCTAssertEqual(line, #"{"arguments":["disable","pg-port"],"host":"node2","module":"AM","verb":"checker","yes":false}"#)
        XCTAssertEqual(try ControlJSON.decode(ControlRequest.self, from: Array(line.utf8)), request)

        let bare = ControlRequest(verb: "status")
        XCTAssertEqual(try ControlJSON.line(bare), #"{"arguments":[],"verb":"status","yes":false}"#)
        XCTAssertEqual(try ControlJSON.decode(ControlRequest.self, from: Array(try ControlJSON.line(bare).utf8)), bare)
    }

    func testHandWrittenRequestNeedsOnlyItsVerb() throws {
        let request = try ControlJSON.decode(ControlRequest.self, from: Array(#"{"verb":"second","module":"AM","yes":true}"#.utf8))
        XCTAssertEqual(request, ControlRequest(verb: "second", module: "AM", arguments: [], yes: true, host: nil))
    }

    func testResponseRoundTripWithStatus() throws {
        let response = ControlResponse(ok: true, message: "line one\nline two", status: sampleReport)
        let line = try ControlJSON.line(response)
        XCTAssertFalse(line.contains("\n"), "one line on the socket")
        XCTAssertEqual(try ControlJSON.decode(ControlResponse.self, from: Array(line.utf8)), response)
        let pretty = try ControlJSON.pretty(response)
        XCTAssertEqual(try JSONDecoder().decode(ControlResponse.self, from: Data(pretty.utf8)), response)

        let refused = ControlResponse.refused("unknown module 'XY'")
        XCTAssertEqual(try ControlJSON.line(refused), #"{"error":"unknown module 'XY'","message":"","ok":false}"#)
        let log = ControlResponse(ok: true, logFile: "/var/log/mirror/AM.log")
        XCTAssertEqual(try ControlJSON.line(log), #"{"logFile":"/var/log/mirror/AM.log","message":"","ok":true}"#)
    }

    func testModuleReportShape() throws {
        let module = ModuleReport(
            name: "AM", localState: "ALONE", peerState: nil, peerVisible: false, generations: "current=1", upToDate: true,
            checkers: [CheckerReport(name: "pg-port", kind: "tcp", enabled: true, up: nil)],
            lastFailover: FailoverTimeline(steps: [TimelineStep(name: "fault seen", atMilliseconds: 0)]))
        XCTAssertEqual(try ControlJSON.line(module), """
            {"boot":true,"checkers":[{"enabled":true,"kind":"tcp","name":"pg-port"}],"errdEnabled":true,"generations":"current=1",\
            "lastFailover":{"steps":[{"atMilliseconds":0,"name":"fault seen"}]},"localState":"ALONE","name":"AM","notes":[],\
            "peerVisible":false,"upToDate":true,"virtualIPs":[]}
            """)
    }

    func testMalformedMessagesAreExplained() {
        func reason(_ text: String) -> String {
            do {
                _ = try ControlJSON.decode(ControlRequest.self, from: Array(text.utf8))
                return "decoded"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(reason("status -m AM"), "malformed JSON: not JSON")
        XCTAssertEqual(reason(#"{"module":"AM"}"#), "malformed JSON: missing key 'verb' in the top level")
        XCTAssertEqual(reason(#"{"verb":7}"#), "malformed JSON: 'verb' is not a string")
        XCTAssertEqual(reason(#"{"verb":"boot","arguments":"off"}"#), "malformed JSON: 'arguments' is not a list")
        XCTAssertEqual(reason(#"{"verb":"boot","arguments":["off",1]}"#), "malformed JSON: 'arguments[1]' is not a string")
        XCTAssertEqual(reason(#"{"verb":"second","yes":"yes"}"#), "malformed JSON: 'yes' is not true or false")
        XCTAssertEqual(reason(#"["status"]"#), "malformed JSON: the top level is not an object")
    }
}
