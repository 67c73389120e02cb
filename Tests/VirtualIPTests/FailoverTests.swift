import Glibc
import VirtualIP
import TestSupport
import XCTest

/// The virtual IP moving from node1 to node2 while a client on the same segment uses it.
final class FailoverTests: XCTestCase {
    static let vip = "10.77.0.100"
    static let port: UInt16 = 7000

    /// Through the API, in two steps so that the test shows what the gratuitous ARP is for: with the
    /// address moved but not yet announced, the client still sends to node1's MAC and cannot connect;
    /// right after the announcement its ARP entry names node2's MAC, without any traffic of its own,
    /// and it reaches node2 at once.
    func testClientFollowsTheAddressToNode2AsSoonAsItIsAnnounced() throws {
        try requireRoot()
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        try lab.startNameServer(in: .node1, port: Self.port)
        try lab.startNameServer(in: .node2, port: Self.port)
        let vip = try VirtualAddress(cidr: "\(Self.vip)/24", interface: "veth-am")
        let node1MAC = try lab.mac(.node1), node2MAC = try lab.mac(.node2)

        XCTAssertEqual(try lab.run(in: .node1) { try VirtualIPManager().add(vip) }, .added)
        XCTAssertEqual(try lab.run(in: .client) { try fetchLine(host: Self.vip, port: Self.port, timeout: 2) }, "node1")
        XCTAssertEqual(try lab.neighbour(in: .client, of: Self.vip)?.mac, node1MAC)

        let moveStart = now()
        XCTAssertEqual(try lab.run(in: .node1) { try VirtualIPManager().remove(vip) }, .removed)
        let quiet = VirtualIPManager(options: .init(announcements: 0))  // probes (nobody answers), adds, says nothing
        XCTAssertEqual(try lab.run(in: .node2) { try quiet.add(vip) }, .added)
        let moved = now()

        // Not announced: the client's cache still names node1, which no longer accepts the address.
        XCTAssertEqual(try lab.neighbour(in: .client, of: Self.vip)?.mac, node1MAC, "nothing told the client yet")
        XCTAssertThrowsError(try lab.run(in: .client) { try fetchLine(host: Self.vip, port: Self.port, timeout: 0.5) },
                             "frames still go to node1's MAC")

        let announceStart = now()
        let frames = try lab.run(in: .node2) { try VirtualIPManager().announce(vip.address, on: "veth-am") }
        let announced = now()
        XCTAssertEqual(frames, 6, "3 rounds of request + reply")
        let entry = try lab.neighbour(in: .client, of: Self.vip)
        XCTAssertEqual(entry?.mac, node2MAC, "the gratuitous ARP updated the client's entry (state \(entry?.state ?? "-"))")
        XCTAssertEqual(try lab.run(in: .client) { try fetchLine(host: Self.vip, port: Self.port, timeout: 1) }, "node2")
        let reached = now()
        print(String(format: "failover timings: remove+probe+add %.0f ms, announce (3 rounds) %.0f ms, client reached node2 %.0f ms after the announcement",
                     (moved - moveStart) * 1000, (announced - announceStart) * 1000, (reached - announced) * 1000))
    }

    /// The same move with the `mirror vip` verbs under `nsenter --net`, as an operator would do it:
    /// node2 refuses to add an address node1 still answers for; once node1 removed it, node2's
    /// `add` (probe, add, gratuitous ARP) sends the client to node2 at once.
    func testFailoverWithTheMirrorVipCommands() throws {
        try requireRoot()
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        try lab.startNameServer(in: .node1, port: Self.port)
        try lab.startNameServer(in: .node2, port: Self.port)
        let node1MAC = try lab.mac(.node1), node2MAC = try lab.mac(.node2)
        func vip(_ host: NetworkLab.Host, _ arguments: [String]) throws -> CommandResult {
            try lab.command(in: host, [mirrorExecutable, "vip"] + arguments)
        }

        let added = try vip(.node1, ["add", "\(Self.vip)/24", "--interface", "veth-am"])
        XCTAssertEqual(added.status, 0, added.error)
        XCTAssertTrue(added.output.contains("added \(Self.vip)/24 on veth-am"), added.output)
        XCTAssertEqual(try lab.run(in: .client) { try fetchLine(host: Self.vip, port: Self.port, timeout: 2) }, "node1")

        // Node2 must not take an address node1 still holds.
        let refused = try vip(.node2, ["add", "\(Self.vip)/24", "--interface", "veth-am"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.error.contains("another host (\(node1MAC)) answered an ARP probe"), refused.error)
        XCTAssertEqual(try lab.addresses(on: .node2), ["10.77.0.2/24"], "nothing added on a refusal")
        let probed = try vip(.node2, ["probe", Self.vip, "--interface", "veth-am"])
        XCTAssertEqual(probed.status, 3)
        XCTAssertTrue(probed.output.contains("answered by \(node1MAC)"), probed.output)

        let start = now()
        let removed = try vip(.node1, ["del", "\(Self.vip)/24", "--interface", "veth-am"])
        XCTAssertEqual(removed.status, 0, removed.error)
        let takenOver = try vip(.node2, ["add", "\(Self.vip)/24", "--interface", "veth-am"])
        XCTAssertEqual(takenOver.status, 0, takenOver.error)
        XCTAssertEqual(try lab.neighbour(in: .client, of: Self.vip)?.mac, node2MAC)
        XCTAssertEqual(try lab.run(in: .client) { try fetchLine(host: Self.vip, port: Self.port, timeout: 1) }, "node2")
        print(String(format: "failover with mirror vip del/add: client reached node2 %.0f ms after the del began", (now() - start) * 1000))

        XCTAssertEqual(try vip(.node1, ["status", "\(Self.vip)/24", "--interface", "veth-am"]).status, 3)
        let present = try vip(.node2, ["status", "\(Self.vip)/24", "--interface", "veth-am"])
        XCTAssertEqual(present.status, 0)
        XCTAssertEqual(present.output, "present: \(Self.vip)/24 on veth-am\n")
    }
}
