import ControlChannel
import Foundation
import Glibc
import TestSupport
import XCTest

/// The seed's three application-upgrade procedures (Milestone management server and its SQL
/// server on a SafeKit mirror cluster), step by step with `clusterctl`, the state pair asserted
/// after every step, and the versions and data checked on each node: through its mount or plain
/// directory, through the management service's HTTP answers and through psql. The application is
/// `Tests/ManagementApp` (an HTTP service with a data directory and a version file, PostgreSQL 15
/// as its SQL server); its `upgrade` command takes a node from version N to N+1.
///
/// The two daemons each in its network namespace, a virtual IP per module; the test reaches the
/// management service from the client's namespace through its module's virtual IP.
final class ProcedureTests: XCTestCase {
    typealias AppModule = ManagementCluster.AppModule

    /// Procedure 1: the management service and its SQL server in one module (AM). Also the seed's
    /// warning: with boot off, node2 rebooting during the migration stays in STOP, so its version-N
    /// copy is not resynchronised from node1's migrated one too early.
    func testProcedure1ManagementAndSQLInOneModule() throws {
        let app = try ManagementCluster(modules: [
            AppModule(name: "AM", mgmtDirectory: "/srv/AM/mgmt", sql: .inModule(directory: "/srv/AM/pgdata")),
        ])
        try upgradeProcedure(app, modules: ["AM"], mgmt: "AM", database: .replicated, rebootNode2DuringTheMigration: true)
        app.saveTranscript("procedure1")
        try app.shutdown()
    }

    /// Procedure 2: the management service (MGT) and its SQL server (SQL) in two modules, each
    /// with its virtual IP (the service reaches its database on SQL's), each step on both.
    func testProcedure2ManagementAndSQLInTwoModules() throws {
        let app = try ManagementCluster(modules: [
            AppModule(name: "MGT", mgmtDirectory: "/srv/MGT", sql: .module("SQL")),
            AppModule(name: "SQL", mgmtDirectory: nil, sql: .inModule(directory: "/srv/SQL")),
        ])
        try upgradeProcedure(app, modules: ["MGT", "SQL"], mgmt: "MGT", database: .replicated, rebootNode2DuringTheMigration: false)
        app.saveTranscript("procedure2")
        try app.shutdown()
    }

    /// Procedure 3: the management service in a module, its SQL server outside the cluster (not
    /// replicated, in the client's namespace): backed up first, migrated by node1's upgrade,
    /// restored before node2's.
    func testProcedure3ManagementWithAnExternalSQLServer() throws {
        let app = try ManagementCluster(modules: [AppModule(name: "AM", mgmtDirectory: "/srv/AM", sql: .external)])
        try app.external("install")
        try app.external("start")
        try upgradeProcedure(app, modules: ["AM"], mgmt: "AM", database: .external, rebootNode2DuringTheMigration: false)
        app.saveTranscript("procedure3")
        try app.shutdown()
    }

    /// The everyday operations of docs/operations.md on the management service alone (module AM,
    /// no database): a planned switchover with swap and back; maintenance on the SECOND (stopped,
    /// then rebooted with boot on: it comes back as SECOND by itself and receives only what changed,
    /// which is what boot off prevents during an upgrade); replacing a node (a new node2 with
    /// empty directories and no state is resynchronised by checksums); a network partition (both
    /// serve alone) resolved with prim on the reference and second on the other.
    func testEverydayOperations() throws {
        let app = try ManagementCluster(modules: [AppModule(name: "AM", mgmtDirectory: "/srv/AM", sql: .none)])
        let lab = app.lab
        let network = app.network
        func records(_ node: String) throws -> String { try app.file(node, "/srv/AM/records") }
        try app.install(on: "node1")
        try lab.start("node1")
        try lab.start("node2")
        try app.expect(["AM"], "WAIT", "WAIT")
        app.ctl("node1", ["prim", "-m", "AM"])
        try app.waitUpToDate("node2", "AM")
        try app.expect(["AM"], "PRIM", "SECOND")
        let refused = app.ctlResult("node2", ["prim", "-m", "AM"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.errors.contains("running as SECOND: stop the module first"), refused.errors)
        let unknown = app.ctlResult("node1", ["stop", "-m", "MA"])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.errors.contains("unknown module \"MA\" (modules: AM)"), unknown.errors)

        // Planned switchover, and back.
        app.ctl("node1", ["swap", "-m", "AM"])
        try app.expect(["AM"], "SECOND", "PRIM", statusFrom: "node2")
        try app.waitForService("node2")
        app.ctl("node2", ["swap", "-m", "AM"])
        try app.expect(["AM"], "PRIM", "SECOND")
        try app.waitForService("node1")

        // Maintenance on node2: stopped, node1 goes on alone; node2 reboots with boot on and comes
        // back as SECOND, receiving only what changed meanwhile.
        let changeMapResyncs = lab.log(of: "node1").components(separatedBy: "resync by change map").count - 1
        app.ctl("node2", ["stop", "-m", "AM"])
        try app.expect(["AM"], "ALONE", "STOP")
        let forced = app.ctlResult("node2", ["prim", "-m", "AM"])
        XCTAssertEqual(forced.status, 1)
        XCTAssertTrue(forced.errors.contains("node1 is serving as ALONE: stop it there first"), forced.errors)
        XCTAssertEqual(lab.state("node2", "AM"), "STOP", "nothing done")
        try appendRecord("4 added during node2's maintenance", app, "node1", "/srv/AM")
        lab.stop("node2")
        let down = app.ctlResult("node2", ["status"])
        XCTAssertEqual(down.status, 2, "the daemon cannot be reached: \(down.errors)")
        try lab.start("node2")
        try app.waitUpToDate("node2", "AM")
        try app.expect(["AM"], "PRIM", "SECOND")
        XCTAssertEqual(try records("node2"), try records("node1"))
        // Only what changed travels, by the change map node1 kept meanwhile.
        let line = try lab.waitForLog(of: "node1", containing: "resync by change map", count: changeMapResyncs + 1)
        XCTAssertTrue(line.contains("node2 is up to date"), line)

        // node2 replaced: the old machine is gone for good; a new one with the same name, cluster
        // file and key, empty directories and no state joins and is resynchronised by checksums.
        let checksumResyncs = lab.log(of: "node1").components(separatedBy: "resync by checksum").count - 1
        lab.crash("node2")
        try lab.waitFor("AM", "ALONE", nil, timeout: 10)
        _ = umount2(lab.path("node2", "/srv/AM"), Int32(MNT_DETACH))
        for directory in ["/srv/AM", "/var/lib/mirror"] {
            try FileManager.default.removeItem(atPath: lab.path("node2", directory))
            _ = try lab.scratch.sub("node2" + directory)
        }
        try lab.start("node2")
        try app.waitUpToDate("node2", "AM")
        try app.expect(["AM"], "PRIM", "SECOND")
        XCTAssertEqual(try records("node2"), try records("node1"))
        try lab.waitForLog(of: "node1", containing: "resync by checksum", count: checksumResyncs + 1)

        // A network partition: each node serves alone and writes; when the network returns, the
        // divergence is refused on both sides until the operator picks the reference.
        try partition(network, true)
        try lab.waitFor("AM", "ALONE", "ALONE", timeout: 15)
        try appendRecord("5 written on node1 during the partition", app, "node1", "/srv/AM")
        try appendRecord("5 written on node2 during the partition", app, "node2", "/srv/AM")
        try partition(network, false)
        try app.expect(["AM"], "WAIT", "WAIT", timeout: 20)
        app.ctl("node2", ["status"])
        let asked = app.ctlResult("node2", ["second", "-m", "AM"])
        XCTAssertEqual(asked.status, 1)
        XCTAssertTrue(asked.output.contains("DISCARDED") && asked.output.contains("records"), asked.output)
        app.ctl("node1", ["prim", "-m", "AM"])
        try app.expect(["AM"], "ALONE", "WAIT")
        app.ctl("node2", ["second", "--yes", "-m", "AM"])
        try app.waitUpToDate("node2", "AM")
        try app.expect(["AM"], "PRIM", "SECOND")
        XCTAssertTrue(try records("node2").contains("5 written on node1 during the partition"))
        XCTAssertFalse(try records("node2").contains("5 written on node2"), "node2's changes discarded")
        XCTAssertEqual(try records("node2"), try records("node1"))
        try app.waitForService("node1")
        app.saveTranscript("everyday")
        try app.shutdown()
    }

    /// Cuts (or restores) the network between the two nodes only: their bridge ports isolated from
    /// each other, links up, the client still reaching both.
    private func partition(_ network: NetworkLab, _ cut: Bool) throws {
        for port in ["p-node1", "p-node2"] {
            try mustRun(["ip", "netns", "exec", network.switchNamespace, "bridge", "link", "set", "dev", port, "isolated", cut ? "on" : "off"])
        }
    }

    /// Where the management database lives.
    enum Database {
        /// In a replicated module (PostgreSQL on each node's copy): it follows the module's data.
        case replicated
        /// One server outside the cluster, shared by both nodes, not replicated.
        case external
    }

    /// The seed's procedure on `modules` (every step on each of them), `mgmt` being the module
    /// of the management service.
    private func upgradeProcedure(_ app: ManagementCluster, modules: [String], mgmt: String, database: Database,
                                  rebootNode2DuringTheMigration: Bool) throws {
        let lab = app.lab
        let mgmtDirectory = try XCTUnwrap(app.modules.first { $0.name == mgmt }?.mgmtDirectory)
        func conninfo(_ node: String) throws -> String { database == .external ? app.externalConninfo : try app.conninfo(node) }
        func cameras(_ node: String) throws -> String { try app.sql(try conninfo(node), "select id, name from cameras order by id") }

        // Version 1 installed on node1, the pair formed with node1 as the reference: (PRIM, SECOND),
        // node2's copies resynchronised.
        try app.install(on: "node1")
        try lab.start("node1")
        try lab.start("node2")
        for module in modules { try lab.waitFor(module, "WAIT", "WAIT") }
        for module in modules { app.ctl("node1", ["prim", "-m", module]) }
        for module in modules { try app.waitUpToDate("node2", module) }
        try app.expect(modules, "PRIM", "SECOND")
        XCTAssertEqual(try app.versions("node1").data, "1")
        XCTAssertEqual(try app.versions("node1").sql, "1")
        XCTAssertEqual(try app.records("node1"), ["1 gate", "2 lobby", "3 parking"])
        XCTAssertEqual(try app.file("node2", mgmtDirectory + "/VERSION"), "1\n", "node2's copy, read through its read-only mount")
        XCTAssertEqual(try app.file("node2", mgmtDirectory + "/records"), try app.file("node1", mgmtDirectory + "/records"))

        // A backup of the database on node1 (for security; with an external server, for its
        // restore before node2's migration).
        let backup = lab.scratch.path + "/mgmt-version1.dump"
        let dumped = try runSpawned(["/usr/bin/pg_dump", "-Fc", "-f", backup, "-d", try conninfo("node1")])
        XCTAssertEqual(dumped.status, 0, dumped.error)

        // Boot off on both nodes: a node rebooted during the migration must not start the module.
        for module in modules {
            let answer = app.ctl("node1", ["-H", "all", "boot", "-m", module, "off"])
            XCTAssertEqual(answer, "node1: \(module) on node1: boot off\nnode2: \(module) on node2: boot off\n")
        }
        XCTAssertEqual(app.ctl("node2", ["boot", "-m", modules[0], "status"]), "\(modules[0]) on node2: boot off\n")

        // (ALONE, STOP): no more replication to node2.
        for module in modules { app.ctl("node2", ["stop", "-m", module]) }
        try app.expect(modules, "ALONE", "STOP")

        // Process monitoring and checkers suspended on node1, then the upgrade there only.
        for module in modules {
            XCTAssertEqual(app.ctl("node1", ["errd", "disable", "-m", module]), "\(module) on node1: errd disabled\n")
            XCTAssertEqual(app.ctl("node1", ["checker", "disable", "all", "-m", module]), "\(module) on node1: checker all disabled\n")
        }
        let upgraded = try app.upgrade(on: "node1", module: mgmt)
        app.remember("upgrade on node1:\n" + upgraded)
        XCTAssertTrue(upgraded.contains("upgraded from version 1 to 2"), upgraded)
        XCTAssertEqual(try app.versions("node1").data, "2")
        XCTAssertEqual(try app.versions("node1").sql, "2")
        XCTAssertEqual(try app.records("node1"), ["1 gate v2", "2 lobby v2", "3 parking v2"])
        XCTAssertEqual(try cameras("node1"), "1|gate\n2|lobby\n3|parking")
        XCTAssertEqual(try app.sql(try conninfo("node1"), "select distinct v2 from cameras"), "migrated to 2")
        // Changes made on node1 after its upgrade: the reference data node2 must end up with.
        try appendRecord("10 added on node1 after the upgrade", app, "node1", mgmtDirectory)
        _ = try app.sql(try conninfo("node1"), "insert into cameras (id, name) values (10, 'added on node1')")
        for module in modules { XCTAssertEqual(lab.state("node1", module), "ALONE", "the service's restart went unnoticed (errd off)") }
        XCTAssertEqual(try app.file("node2", mgmtDirectory + "/VERSION"), "1\n", "node2's copy (unmounted in STOP) is untouched")

        if rebootNode2DuringTheMigration {
            // node2 reboots: its daemon restarts with boot off and leaves the module in STOP; were it
            // started, it would become SECOND and take node1's migrated data before its own upgrade.
            lab.stop("node2")
            try lab.start("node2")
            app.remember("node2's log after its reboot:\n" + (try lab.waitForLog(of: "node2", containing: "left in STOP (boot off)")))
            let until = Date().addingTimeInterval(4)   // longer than the heartbeat timeout (3 s)
            while Date() < until {
                for module in modules { XCTAssertEqual(lab.state("node2", module), "STOP", "boot off: node2 stays stopped after its reboot") }
                usleep(250_000)
            }
            for module in modules { try lab.waitFor(module, "ALONE", "STOP") }
            XCTAssertEqual(try app.file("node2", mgmtDirectory + "/VERSION"), "1\n", "node2's version-1 data was not resynchronised")
            let rebooted = try String(contentsOfFile: try XCTUnwrap(lab.logs["node2"]?.last), encoding: .utf8)
            XCTAssertFalse(rebooted.contains("resync"), "no resync towards node2 after its reboot:\n\(rebooted)")
        }

        // Stop node1: (STOP, STOP).
        for module in modules { app.ctl("node1", ["stop", "-m", module]) }
        try app.expect(modules, "STOP", "STOP")

        if database == .external {
            // The external database, migrated by node1, back to version 1 from the backup (after a
            // precautionary backup of the migrated one); otherwise node2's upgrade refuses it.
            let migrated = try runSpawned(["/usr/bin/pg_dump", "-Fc", "-f", lab.scratch.path + "/mgmt-version2.dump", "-d", app.externalConninfo])
            XCTAssertEqual(migrated.status, 0, migrated.error)
            let restored = try runSpawned(["/usr/bin/pg_restore", "--clean", "--if-exists", "--single-transaction", "-d", app.externalConninfo, backup])
            XCTAssertEqual(restored.status, 0, restored.error)
            XCTAssertEqual(try app.sql(app.externalConninfo, "select version from meta"), "1")
            XCTAssertEqual(try cameras("node2"), "1|gate\n2|lobby\n3|parking", "node1's row is gone with the restore")
        }

        // Force node2 to serve its version-1 copy: (STOP, ALONE).
        for module in modules { app.ctl("node2", ["prim", "-m", module]) }
        try app.expect(modules, "STOP", "ALONE", statusFrom: "node2")
        XCTAssertEqual(try app.versions("node2").data, "1")
        XCTAssertEqual(try app.versions("node2").sql, "1")
        XCTAssertEqual(try app.records("node2"), ["1 gate", "2 lobby", "3 parking"])

        // Monitoring suspended on node2, the upgrade there.
        for module in modules {
            app.ctl("node2", ["errd", "disable", "-m", module])
            app.ctl("node2", ["checker", "disable", "all", "-m", module])
        }
        try app.upgrade(on: "node2", module: mgmt)
        XCTAssertEqual(try app.versions("node2").data, "2")
        XCTAssertEqual(try app.versions("node2").sql, "2")
        XCTAssertEqual(try app.records("node2"), ["1 gate v2", "2 lobby v2", "3 parking v2"])
        try appendRecord("20 added on node2 after its upgrade", app, "node2", mgmtDirectory)
        _ = try app.sql(try conninfo("node2"), "insert into cameras (id, name) values (20, 'added on node2')")
        for module in modules { XCTAssertEqual(lab.state("node2", module), "ALONE") }

        // Stop node2: (STOP, STOP).
        for module in modules { app.ctl("node2", ["stop", "-m", module]) }
        try app.expect(modules, "STOP", "STOP", statusFrom: "node2")

        // node1 is the reference: (ALONE, STOP).
        for module in modules { app.ctl("node1", ["prim", "-m", module]) }
        try app.expect(modules, "ALONE", "STOP")
        XCTAssertEqual(try app.versions("node1").data, "2")
        XCTAssertEqual(try app.records("node1").last, "10 added on node1 after the upgrade")

        // node2 forced to SECOND: asked first what it discards, then with --yes: (PRIM, SECOND),
        // node2's copies resynchronised from node1's.
        for module in modules {
            let asked = app.ctlResult("node2", ["second", "-m", module])
            XCTAssertEqual(asked.status, 1, "second without --yes does nothing")
            XCTAssertTrue(asked.output.contains("DISCARDED"), asked.output)
            XCTAssertTrue(asked.errors.contains("rerun with --yes"), asked.errors)
            XCTAssertEqual(lab.state("node2", module), "STOP")
        }
        for module in modules {
            let accepted = app.ctl("node2", ["second", "--yes", "-m", module])
            XCTAssertTrue(accepted.contains("second accepted on node2"), accepted)
        }
        for node in ["node1", "node2"] { app.ctl(node, ["status"]) }   // for the runbook: the resync, if still running
        for module in modules { try app.waitUpToDate("node2", module) }
        try app.expect(modules, "PRIM", "SECOND", timeout: 60)
        let node1Data = try TreeSnapshot(of: lab.path("node1", mgmtDirectory))
        let node2Data = try TreeSnapshot(of: lab.path("node2", mgmtDirectory))
        XCTAssertEqual(node2Data.differences(from: node1Data), [], "node2's management data is node1's")
        XCTAssertEqual(try app.file("node2", mgmtDirectory + "/VERSION"), "2\n")
        XCTAssertFalse(try app.file("node2", mgmtDirectory + "/records").contains("added on node2"), "node2's own changes discarded")

        // Boot on, errd and checkers resumed, on both nodes.
        for module in modules {
            app.ctl("node1", ["-H", "all", "boot", "-m", module, "on"])
            app.ctl("node1", ["-H", "all", "errd", "enable", "-m", module])
            app.ctl("node1", ["-H", "all", "checker", "enable", "all", "-m", module])
        }
        let status = try app.expect(modules, "PRIM", "SECOND")
        for module in modules {
            for node in ClusterLab.nodes {
                let report = try app.report(node, module)
                XCTAssertTrue(report.boot && report.errdEnabled && report.checkers.allSatisfy(\.enabled), "\(node): \(report)")
            }
        }
        XCTAssertTrue(status.contains("boot: on, errd: enabled"), status)
        XCTAssertTrue(status.contains("): enabled, up"), "the checkers test the service again: \(status)")
        for module in modules {
            let verified = app.ctl("node1", ["verify", "-m", module])
            XCTAssertFalse(verified.contains("difference"), verified)
        }

        // node2 now serves what node1 migrated: a swap makes it PRIM on its resynchronised copies.
        for module in modules { app.ctl("node1", ["swap", "-m", module]) }
        try app.expect(modules, "SECOND", "PRIM", statusFrom: "node2", timeout: 30)
        try app.waitForService("node2")
        XCTAssertEqual(try app.versions("node2").data, "2")
        XCTAssertEqual(try app.versions("node2").sql, "2")
        XCTAssertEqual(try app.records("node2"),
                       ["1 gate v2", "2 lobby v2", "3 parking v2", "10 added on node1 after the upgrade"])
        switch database {
        case .replicated:
            XCTAssertEqual(try cameras("node2"), "1|gate\n2|lobby\n3|parking\n10|added on node1", "node2's database is node1's")
        case .external:
            XCTAssertEqual(try cameras("node2"), "1|gate\n2|lobby\n3|parking\n20|added on node2",
                           "the external database: restored, then migrated by node2")
        }
    }

    /// Appends a line to the service's records on `node` (through its read-write mount).
    private func appendRecord(_ line: String, _ app: ManagementCluster, _ node: String, _ directory: String) throws {
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: app.lab.path(node, directory) + "/records"))
        handle.seekToEndOfFile()
        handle.write(Data((line + "\n").utf8))
        try handle.close()
    }
}
