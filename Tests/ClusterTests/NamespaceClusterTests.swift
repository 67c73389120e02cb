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
    /// still on its interface and its daemon removes it before becoming SECOND.
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
    }
}
