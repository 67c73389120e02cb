import Foundation
import MirrorCore
import XCTest

/// docs/state-machine.md and the code agree: every row of its transition table is replayed.
final class TransitionTableTests: XCTestCase {
    /// One parsed row of the table.
    struct Row {
        var line: Int
        var from: ModuleState
        var event: String
        var condition: String
        var to: ModuleState
        var actions: [String]
    }

    func testEveryRowOfTheDocumentedTableHolds() throws {
        let rows = try Self.parseTable()
        XCTAssertGreaterThan(rows.count, 60)
        for row in rows {
            let key = "\(row.from.rawValue): \(row.condition)"
            guard let setUp = Self.conditions[key] else {
                XCTFail("line \(row.line): no set-up for condition \"\(key)\"")
                continue
            }
            var harness = setUp()
            XCTAssertEqual(harness.state, row.from, "line \(row.line): set-up for \"\(key)\" reached \(harness.state.rawValue)")
            let actions = harness.step(Self.event(named: row.event, harness: &harness))
            let summaries = actions.map(\.summary).filter { !$0.hasPrefix("log(") }
            XCTAssertEqual(harness.state, row.to, "line \(row.line): \(row.from.rawValue) | \(row.event) | \(row.condition)")
            XCTAssertEqual(summaries, row.actions, "line \(row.line): \(row.from.rawValue) | \(row.event) | \(row.condition)")
        }
        let unused = Set(Self.conditions.keys).subtracting(rows.map { "\($0.from.rawValue): \($0.condition)" })
        XCTAssertEqual(unused, [], "set-ups that no row uses")
    }

    func testEveryStateAndEveryEventKindAppearsInTheTable() throws {
        let rows = try Self.parseTable()
        XCTAssertEqual(Set(rows.map(\.from)), Set(ModuleState.allCases))
        XCTAssertEqual(Set(rows.map(\.event)), Set(Self.eventNames))
    }

    // MARK: - Parsing

    static func parseTable() throws -> [Row] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/state-machine.md"), encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        guard let start = lines.firstIndex(of: "## Transition table") else { throw TableError("no transition table section") }
        var rows: [Row] = []
        for (index, line) in lines.enumerated().dropFirst(start) where line.hasPrefix("| ") && !line.hasPrefix("| From ") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count == 5, let from = ModuleState(rawValue: cells[0]), let to = ModuleState(rawValue: cells[3]) else {
                throw TableError("line \(index + 1) is not a table row: \(line)")
            }
            let actions = cells[4] == "—" ? [] : cells[4].components(separatedBy: ", ")
            rows.append(Row(line: index + 1, from: from, event: cells[1], condition: cells[2], to: to, actions: actions))
        }
        return rows
    }

    struct TableError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: - Events by name

    static let eventNames = ["data-loaded", "data-changed", "start", "stop", "restart", "prim", "second", "swap", "tick", "heartbeat",
                             "peer-lost", "resync-finished", "resync-failed", "checker-down", "checker-up",
                             "process-died", "witness-yes", "witness-no"]

    static func event(named name: String, harness: inout NodeHarness) -> Event {
        switch name {
        case "data-loaded": return .localDataLoaded(NodeHarness.inSync)
        case "data-changed": return .localDataChanged((harness.node.generations ?? NodeHarness.inSync).startAlone(newCurrent: GenerationID(0xD1)))
        case "tick": return .tick
        case "heartbeat": return harness.peerHeartbeat()
        case "peer-lost": return .peerLost
        case "resync-finished": return .resyncFinished
        case "resync-failed": return .resyncFailed
        case "checker-down": return .checkerDown("tcp")
        case "checker-up": return .checkerUp("tcp")
        case "process-died": return .processDied
        case "witness-yes": return harness.witnessVerdict(true)
        case "witness-no": return harness.witnessVerdict(false)
        default:
            guard let command = Command(rawValue: name) else { fatalError("unknown event \(name) in the table") }
            return .command(command)
        }
    }
}
