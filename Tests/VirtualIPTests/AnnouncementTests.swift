import Foundation
import Glibc
import TestSupport
@testable import VirtualIP
import XCTest

/// What goes on the wire: the frames themselves, and what a neighbour receives during an announcement.
final class AnnouncementTests: XCTestCase {
    let vip = IPv4Address("10.77.0.100")!
    let mac = MACAddress("02:00:00:00:00:01")!

    func testGratuitousARPFrames() {
        let request = ARPPacket.gratuitousRequest(vip, from: mac).frame()
        XCTAssertEqual(request.count, 60, "padded to the Ethernet minimum")
        XCTAssertEqual(Array(request[0..<14]), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06])
        XCTAssertEqual(Array(request[14..<22]), [0, 1, 0x08, 0, 6, 4, 0, 1], "Ethernet/IPv4, request")
        XCTAssertEqual(Array(request[22..<42]), [2, 0, 0, 0, 0, 1, 10, 77, 0, 100, 0, 0, 0, 0, 0, 0, 10, 77, 0, 100])
        XCTAssertEqual(Array(request[42...]), [UInt8](repeating: 0, count: 18))

        let reply = ARPPacket.gratuitousReply(vip, from: mac).frame()
        XCTAssertEqual(Array(reply[20..<22]), [0, 2], "reply")
        XCTAssertEqual(Array(reply[22..<42]), [2, 0, 0, 0, 0, 1, 10, 77, 0, 100, 2, 0, 0, 0, 0, 1, 10, 77, 0, 100],
                       "target hardware address = sender's, as Linux requires of a gratuitous reply")

        let probe = ARPPacket.probe(vip, from: mac).frame()
        XCTAssertEqual(Array(probe[28..<32]), [0, 0, 0, 0], "RFC 5227: sender address 0.0.0.0")
        XCTAssertEqual(Array(probe[38..<42]), [10, 77, 0, 100])

        XCTAssertEqual(ARPPacket(frame: reply), .gratuitousReply(vip, from: mac))
        XCTAssertNil(ARPPacket(frame: Array(reply[0..<41])))
        var ipv6 = reply
        ipv6[12] = 0x86; ipv6[13] = 0xdd
        XCTAssertNil(ARPPacket(frame: ipv6))
    }

    /// Captured on the client: three rounds of request + reply from node2's MAC for the VIP, about
    /// 200 ms apart.
    func testAnnouncementAsTheClientSeesIt() throws {
        try requireRoot()
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let node2MAC = MACAddress(try lab.mac(.node2))!
        let vip = self.vip
        let capture = try lab.run(in: .client) { () -> ARPSocket in
            try ARPSocket(interfaceIndex: VirtualIPManager().interface(named: "eth0").index)
        }
        let captured = CapturedFrames()
        let listening = DispatchSemaphore(value: 0), finished = DispatchSemaphore(value: 0)
        Thread {
            listening.signal()
            let end = now() + 2
            while now() < end, captured.count < 6 {
                if let packet = try? capture.receive(timeout: end - now()), packet.senderIP == vip {
                    captured.append(packet, at: now())
                }
            }
            finished.signal()
        }.start()
        listening.wait()

        let start = now()
        let outcome = try lab.run(in: .node2) {
            try VirtualIPManager(options: .init(announcements: 3, announcementInterval: 0.2, probeTimeout: nil))
                .add(VirtualAddress(address: vip, prefixLength: 24, interface: "veth-am"))
        }
        XCTAssertEqual(outcome, .added)
        let returned = now() - start
        finished.wait()

        let frames = captured.frames
        XCTAssertEqual(frames.map(\.packet.operation), [1, 2, 1, 2, 1, 2])
        XCTAssertEqual(Set(frames.map(\.packet.senderMAC)), [node2MAC])
        XCTAssertEqual(Set(frames.map(\.packet.targetIP)), [vip])
        XCTAssertTrue(frames.allSatisfy { $0.packet.operation == 1 ? $0.packet.targetMAC == .zero : $0.packet.targetMAC == node2MAC })
        guard frames.count == 6 else { return }
        let gaps = [frames[2].time - frames[0].time, frames[4].time - frames[2].time]
        for gap in gaps { XCTAssertEqual(gap, 0.2, accuracy: 0.1, "rounds \(gaps) s apart") }
        XCTAssertEqual(returned, 0.4, accuracy: 0.2, "add returns after the last round")
        print(String(format: "announcement: rounds %.0f and %.0f ms apart; add returned after %.0f ms", gaps[0] * 1000, gaps[1] * 1000, returned * 1000))
    }
}

/// Frames collected by the capture thread and read after it finished.
private final class CapturedFrames: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(packet: ARPPacket, time: Double)] = []

    var count: Int { lock.withLock { items.count } }
    var frames: [(packet: ARPPacket, time: Double)] { lock.withLock { items } }
    func append(_ packet: ARPPacket, at time: Double) { lock.withLock { items.append((packet, time)) } }
}
