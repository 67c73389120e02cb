import Foundation
import Glibc
import TestSupport
import XCTest

/// The two daemons each in its network namespace (``ClusterLab/Network/namespaces(_:)``): the
/// module's virtual IP is on the serving node only, and a client on the segment follows it
/// through failover and return.
final class NamespaceClusterTests: XCTestCase {
    static let vip = "10.77.0.100"
    static let port: UInt16 = 7000

    /// node1 serves behind the VIP; node1 dies (kill -9 of its daemon and application, its link
    /// cut: a dead machine answers no ARP); node2 takes over the address and the client's ARP
    /// entry follows the gratuitous ARP; node1 returns (link up, daemon started) with the address
    /// still on its interface and its daemon removes it before becoming SECOND; after a swap,
    /// only node1's daemon dies (its kernel keeps the address) and node2 takes it over all the same.
    func testVirtualIPFollowsTheServingNode() throws {
        let network = try NetworkLab()
        let lab = try ClusterLab(modules: [ClusterLab.ModuleSpec(name: "AM", virtualIPs: [("\(Self.vip)/24", "veth-am")])],
                                 network: .namespaces(network))
        defer { lab.tearDown() }
        try network.startNameServer(in: .node1, port: Self.port)
        try network.startNameServer(in: .node2, port: Self.port)
        let node1MAC = try network.mac(.node1), node2MAC = try network.mac(.node2)
        try lab.start("node1")
        try lab.start("node2")
        lab.ok("node1", ["prim", "-m", "AM"])
        try lab.waitFor("AM", "PRIM", "SECOND")
        try lab.waitForTakeover("node1", count: 1)
        XCTAssertTrue(try network.addresses(on: .node1).contains("\(Self.vip)/24"))
        XCTAssertFalse(try network.addresses(on: .node2).contains("\(Self.vip)/24"))
        XCTAssertEqual(try network.run(in: .client) { try fetchLine(host: Self.vip, port: Self.port, timeout: 2) }, "node1")
        XCTAssertEqual(try network.neighbour(in: .client, of: Self.vip)?.mac, node1MAC)

        lab.crash("node1")
        try network.setLink(of: .node1, up: false)
        try lab.waitFor("AM", nil, "ALONE", timeout: 10)
        try lab.waitForTakeover("node2", count: 1)
        XCTAssertTrue(try network.addresses(on: .node2).contains("\(Self.vip)/24"))
        XCTAssertEqual(try network.neighbour(in: .client, of: Self.vip)?.mac, node2MAC, "moved by the gratuitous ARP alone")
        XCTAssertEqual(try network.run(in: .client) { try fetchLine(host: Self.vip, port: Self.port, timeout: 2) }, "node2")

        try network.setLink(of: .node1, up: true)
        XCTAssertTrue(try network.addresses(on: .node1).contains("\(Self.vip)/24"), "the dead daemon left the address")
        try lab.start("node1")
        try lab.waitFor("AM", "SECOND", "PRIM")
        XCTAssertFalse(try network.addresses(on: .node1).contains("\(Self.vip)/24"), "removed by the returning daemon")
        try lab.waitForLog(of: "node1", containing: "left by a previous run that served; removed")
        XCTAssertEqual(try network.run(in: .client) { try fetchLine(host: Self.vip, port: Self.port, timeout: 2) }, "node2")

        lab.ok("node2", ["swap", "-m", "AM"])
        try lab.waitFor("AM", "PRIM", "SECOND")
        try lab.waitForTakeover("node1", count: 2)
        XCTAssertTrue(try network.addresses(on: .node1).contains("\(Self.vip)/24"))
        XCTAssertFalse(try network.addresses(on: .node2).contains("\(Self.vip)/24"), "removed where the module stopped serving")
        XCTAssertEqual(try network.neighbour(in: .client, of: Self.vip)?.mac, node1MAC)
        XCTAssertEqual(try network.run(in: .client) { try fetchLine(host: Self.vip, port: Self.port, timeout: 2) }, "node1")

        // Only node1's daemon and application die; its kernel stays up, still holding the VIP.
        // node2 must take the address over anyway (no probe refusal) and the client follow it.
        lab.crash("node1")
        try lab.waitFor("AM", nil, "ALONE", timeout: 10)
        try lab.waitForTakeover("node2", count: 2)
        XCTAssertTrue(try network.addresses(on: .node2).contains("\(Self.vip)/24"))
        XCTAssertEqual(try network.neighbour(in: .client, of: Self.vip)?.mac, node2MAC, "moved by the gratuitous ARP")
        XCTAssertEqual(try network.run(in: .client) { try fetchLine(host: Self.vip, port: Self.port, timeout: 2) }, "node2")
        try lab.start("node1")
        try lab.waitFor("AM", "SECOND", "PRIM")
        XCTAssertFalse(try network.addresses(on: .node1).contains("\(Self.vip)/24"), "removed by the returning daemon")
    }

    /// One-way loss: node1 can no longer send to node2 (a blackhole route in node1's namespace
    /// drops its replication frames and heartbeats) while node2's heartbeats still reach it.
    /// node2, hearing nothing, takes over with the copy it has. A write node1's application makes
    /// meanwhile must never be acknowledged: it is held (node2 is heard, announcing an up-to-date
    /// copy) and fails once node1 stops serving, rather than returning a success that the node
    /// now serving does not hold.
    func testOneWayLossNeverAcknowledgesAChangeTheNodeTakingOverLacks() throws {
        let network = try NetworkLab()
        let lab = try ClusterLab(network: .namespaces(network))
        defer { lab.tearDown() }
        try lab.startPair()
        try lab.waitUntilUpToDate("node2", "AM")
        let primary = lab.directory("node1", "AM"), secondary = lab.directory("node2", "AM")

        try network.command(in: .node1, ["ip", "route", "add", "blackhole", "\(network.address(.node2))/32"])
        let text = Array("written while node2 could not hear node1\n".utf8)
        let started = Date()
        let deadline = started.addingTimeInterval(15)
        // The write is held from the ack timeout (2 s) on; node2 takes over after 3 s of silence.
        let outcome = synchronousWrite(primary + "/one-way", text, timeout: 15)
        while lab.state("node2", "AM") != "ALONE", Date() < deadline { usleep(100_000) }
        XCTAssertEqual(lab.state("node2", "AM"), "ALONE", "node2, hearing nothing from node1, takes over")
        print("one-way loss: the write returned \(outcome.map { "errno \($0)" } ?? "nothing") after \(Int(Date().timeIntervalSince(started) * 1000)) ms")
        if outcome == 0 {
            XCTAssertEqual(try? String(contentsOfFile: secondary + "/one-way", encoding: .utf8), String(decoding: text, as: UTF8.self),
                           "a write acknowledged on node1 must be on node2, which serves now")
        }
        XCTAssertEqual(outcome, EIO, "the held write fails once node1 stops serving")
        XCTAssertEqual(lab.state("node1", "AM"), "WAIT", "node1 hears node2 serve without hearing it: it stops serving")
        // node2 stops echoing node1 at the cut and takes over one timeout later: node1 sees it serve
        // either just before node2's last echo expires (both serving: divergence) or just after
        // (one-way rule); either way node1 stops.
        let log = lab.log(of: "node1")
        XCTAssertTrue(log.contains("[peer-serves-without-hearing-us]") || log.contains("[both-wrote-alone]"), log.suffix(3000).description)
        try network.command(in: .node1, ["ip", "route", "del", "blackhole", "\(network.address(.node2))/32"])
    }
}
