import ControlChannel
import Foundation
import Glibc
import TestSupport
import XCTest

/// The end-to-end test of the cluster (issue 4): PostgreSQL 15 as the module's application on
/// two nodes in network namespaces, a client in a third namespace inserting rows through the
/// virtual IP while the serving node dies, returns, and the other one dies.
final class PostgresFailoverTests: XCTestCase {
    static let vip = "10.77.0.100"

    /// node1 serves PostgreSQL behind the VIP; the client inserts continuously. node1 dies
    /// (kill -9 of its daemon and of every PostgreSQL process, its link cut: a dead machine is
    /// silent on the segment; see `die`): node2 takes over, the client reconnects through the VIP
    /// (its ARP entry moved to node2), every committed row is there. node1 returns: it becomes
    /// SECOND, resynchronised by change map only (a small part of the data directory travels).
    /// node2 dies: node1 takes over, nothing lost. Prints the measured figures on one line.
    func testPostgreSQLBehindTheVirtualIPSurvivesTwoFailovers() throws {
        let network = try NetworkLab()
        let lab = try ClusterLab(modules: [PostgresModule.spec(vip: "\(Self.vip)/24")], network: .namespaces(network))
        var finished = false
        defer {
            if !finished || (testRun?.totalFailureCount ?? 0) > 0 { print(PostgresModule.serverLogs(lab)) }
            lab.tearDown()
        }
        try PostgresModule.initialize(lab, on: "node1")
        let dataSize = try directorySize(PostgresModule.dataDirectory(lab, "node1"))
        let macs = ["node1": try network.mac(.node1), "node2": try network.mac(.node2)]

        try lab.start("node1")
        try lab.start("node2")
        try lab.waitFor("AM", "WAIT", "WAIT")
        lab.ok("node1", ["prim", "-m", "AM"])
        try lab.waitFor("AM", "PRIM", "SECOND", timeout: 60)
        try lab.waitForTakeover("node1", count: 1, timeout: 60)
        // node2 is SECOND at once, but up to date (may take over) only once the initial resync ended.
        let initial = try lab.waitForLog(of: "node1", containing: "node2 is up to date: resync by", count: 1, timeout: 60)
        print("node1: \(initial)")
        try sql(network, "CREATE TABLE items(id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), payload text NOT NULL)")
        XCTAssertEqual(try network.neighbour(in: .client, of: Self.vip)?.mac, macs["node1"])

        let client = try InsertingClient(network: network, address: Self.vip, scratch: lab.scratch)
        defer { client.stop() }
        try client.waitForCommits(200, after: 0)

        // node1 dies; node2 takes over.
        let first = try failover(from: "node1", to: "node2", lab: lab, network: network, client: client, takeover: 1)
        XCTAssertEqual(try network.neighbour(in: .client, of: Self.vip)?.mac, macs["node2"], "the client's ARP entry names node2")
        try assertEveryCommittedRowIsPresent(client, network)

        // node1 returns (its link back, its daemon started): SECOND, resynchronised by change map.
        try network.setLink(of: .node1, up: true)
        let resyncsBefore = lab.log(of: "node2").components(separatedBy: "node1 is up to date: resync by").count - 1
        try lab.start("node1")
        try lab.waitFor("AM", "SECOND", "PRIM", timeout: 60)
        let resync = try lab.waitForLog(of: "node2", containing: "node1 is up to date: resync by", count: resyncsBefore + 1)
        XCTAssertTrue(resync.contains("resync by change map"), "only what changed while node1 was away travels: \(resync)")
        let sent = try XCTUnwrap(Self.bytesSent(in: resync), resync)
        XCTAssertLessThan(Double(sent), 0.5 * Double(dataSize), "the change map sends a small part of the \(dataSize)-byte data directory: \(resync)")
        XCTAssertFalse(try network.addresses(on: .node1).contains("\(Self.vip)/24"), "the returning node does not hold the VIP")
        XCTAssertTrue(lab.log(of: "node1").contains("left by a previous run that served; removed"), "its daemon removed the dead one's VIP")
        XCTAssertEqual(lab.report("node2", "AM")?.peerState, "SECOND")
        let committedBefore = client.commits.count
        try client.waitForCommits(100, after: committedBefore)

        // node2 dies; node1 takes over again (its second takeover: the first was the operator's prim).
        let second = try failover(from: "node2", to: "node1", lab: lab, network: network, client: client, takeover: 2)
        XCTAssertEqual(try network.neighbour(in: .client, of: Self.vip)?.mac, macs["node1"], "the client's ARP entry names node1")
        try client.waitForCommits(100, after: client.commits.count)
        client.stop()
        let rows = try assertEveryCommittedRowIsPresent(client, network)

        // The serving node stops: its stop script shuts PostgreSQL down (fast), and finds
        // nothing to do when run again.
        lab.stop("node1")
        XCTAssertNil(PostgresModule.runningServer(lab, on: "node1"), "PostgreSQL stopped with the module")
        XCTAssertTrue(lab.log(of: "node1").contains("server stopped"), "pg_ctl stop reported the fast shutdown")
        let again = try runCommand([lab.scratch.path + "/scripts/AM/stop"],
                                   environment: ["MIRROR_MODULE": "AM", "MIRROR_NODE": "node1", "MIRROR_PATH_PREFIX": lab.scratch.path + "/node1"])
        XCTAssertEqual(again.status, 0, "the stop script is idempotent: \(again.output)\(again.error)")
        XCTAssertTrue(again.output.contains("PostgreSQL does not run"), again.output)

        finished = true
        let figures = [first, second].map(\.text).joined(separator: "; ")
        print("PostgreSQL failover figures: \(figures); node1's return: resync by change map sent \(sent) bytes "
            + "(\(String(format: "%.1f", 100 * Double(sent) / Double(dataSize)))% of the \(dataSize)-byte data directory); "
            + "\(client.commits.count) committed inserts, \(rows) rows, none lost")
    }

    // MARK: Steps

    /// What one failover looked like: the takeover's timeline on the new node (milliseconds
    /// after the dead node was last heard) and the outage the client saw.
    struct Failover {
        let from: String, to: String
        let detectionAndPromotion: Int
        let postgresRecovery: Int
        let takeover: Int
        let outage: Int

        var text: String {
            "\(from)->\(to): detection+promotion \(detectionAndPromotion) ms, PostgreSQL recovery \(postgresRecovery) ms "
                + "(application started +\(takeover) ms), client-seen outage \(outage) ms"
        }
    }

    /// `dead` dies while the client inserts; waits until `survivor` completed its `takeover`th
    /// takeover and the client commits again; returns the figures.
    private func failover(from dead: String, to survivor: String, lab: ClusterLab, network: NetworkLab, client: InsertingClient,
                          takeover: Int) throws -> Failover {
        try client.waitForCommits(50, after: client.commits.count)
        let killedAt = now()
        try die(dead, lab: lab, network: network)
        try lab.waitFor("AM", dead == "node1" ? nil : "ALONE", dead == "node2" ? nil : "ALONE", timeout: 15)
        let timelineLine = try lab.waitForTakeover(survivor, count: takeover, timeout: 120)
        print("\(survivor): \(timelineLine)")
        try client.waitForCommits(20, after: client.commits.count, timeout: 30)
        // The outage: the longest pause between two commits from just before the fault on (the
        // dead node may still commit while its link goes down and its processes are killed).
        let around = client.commits.filter { $0.at > killedAt - 1 }
        let (lastBefore, firstAfter) = try XCTUnwrap(zip(around, around.dropFirst()).max { $0.1.at - $0.0.at < $1.1.at - $1.0.at })
        XCTAssertGreaterThan(firstAfter.at - killedAt, 2.5, "no commit between the fault and the takeover (3 s heartbeat timeout)")
        let serverLog = (try? String(contentsOfFile: "\(lab.scratch.path)/\(survivor)/var/log/postgresql/AM.log", encoding: .utf8)) ?? ""
        XCTAssertTrue(serverLog.contains("automatic recovery in progress"), "PostgreSQL recovered from the crash on \(survivor)")

        let timeline = try XCTUnwrap(lab.report(survivor, "AM")?.lastFailover, "no timeline on \(survivor)")
        let steps = Dictionary(uniqueKeysWithValues: timeline.steps.map { ($0.name, $0.atMilliseconds) })
        XCTAssertEqual(timeline.steps.map(\.name), ["peer last heard (this node was SECOND)", "decided to serve", "mounted read-write",
                                                     "virtual IP added", "application started"])
        let promoted = try XCTUnwrap(steps["virtual IP added"]), started = try XCTUnwrap(steps["application started"])
        XCTAssertLessThanOrEqual(promoted, 5000, "detection + promotion within 5 s (heartbeat timeout 3 s)")
        XCTAssertTrue(lab.log(of: survivor).contains("removing the stale postmaster.pid"), "the start script found the dead node's postmaster.pid")
        return Failover(from: dead, to: survivor, detectionAndPromotion: promoted, postgresRecovery: started - promoted, takeover: started,
                        outage: Int(((firstAfter.at - lastBefore.at) * 1000).rounded()))
    }

    /// `node` dies as a machine would: its link goes down (nothing leaves it any more, not even
    /// ARP answers), then its daemon and every PostgreSQL process are killed (kill -9, by PID).
    /// The link matters: with the node's kernel still up and holding the VIP, it would go on
    /// answering ARP requests for the address after the survivor's announcements (until its
    /// daemon restarts and removes the leftover address).
    private func die(_ node: String, lab: ClusterLab, network: NetworkLab) throws {
        let segment = PostgresModule.sharedMemorySegment(lab, on: node)
        try network.setLink(of: lab.host(of: node), up: false)
        lab.crash(node)
        segment.map(PostgresModule.removeSegment)
    }

    // MARK: Checks

    /// Every row the client recorded as committed is in the table, read through the VIP;
    /// returns the table's row count.
    @discardableResult
    private func assertEveryCommittedRowIsPresent(_ client: InsertingClient, _ network: NetworkLab,
                                                  file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let committed = client.commits.map(\.row)
        let present = Set(try sql(network, "SELECT id FROM items").split(separator: "\n").compactMap { Int($0) })
        let missing = committed.filter { !present.contains($0) }
        XCTAssertTrue(missing.isEmpty, "\(missing.count) committed rows missing, first \(missing.prefix(10))", file: file, line: line)
        XCTAssertFalse(committed.isEmpty, file: file, line: line)
        return present.count
    }

    /// Runs `text` with psql from the client's namespace through the VIP; its rows.
    @discardableResult
    private func sql(_ network: NetworkLab, _ text: String) throws -> String {
        let result = try network.command(in: .client, [PostgresServer.bin + "/psql", "-h", Self.vip, "-p", "\(PostgresModule.port)",
                                                       "-U", "postgres", "-d", "postgres", "-X", "-A", "-t", "-q",
                                                       "-v", "ON_ERROR_STOP=1", "-c", text], timeout: 60)
        guard result.status == 0 else { throw TestFailure("psql through the VIP: \(text): \(result.error)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The bytes a "is up to date: resync by ... sent N bytes" line reports.
    static func bytesSent(in line: String) -> Int? {
        guard let range = line.range(of: " sent ") else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    private func directorySize(_ path: String) throws -> Int {
        let output = try mustRun(["du", "-sb", path])
        guard let size = Int(output.prefix { $0.isNumber }) else { throw TestFailure("du: \(output)") }
        return size
    }
}
