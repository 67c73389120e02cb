import HeartbeatTransport
import Logging
import MirrorCore
import ReplTransport
import TestSupport
import XCTest

/// Two real state machines whose only link is a pair of heartbeat channels (a test driver that
/// ticks every 20 ms, not the daemon): they find their roles through the datagrams, one dead path
/// changes nothing, and when every path dies the PRIM goes on alone within the timeout.
final class StateMachinesOverUDPTests: XCTestCase {
    /// One node: its state machine, its channel and what the channel received.
    private final class Driven: @unchecked Sendable {
        let name: String
        var machine: ModuleNode
        var channel: HeartbeatChannel!
        private let lock = NSLock()
        private var received: [Heartbeat] = []

        init(name: String, peer: String) {
            self.name = name
            let config = ModuleConfig(node: name, peer: peer, heartbeatIntervalTicks: 2, peerTimeoutTicks: 15)
            machine = ModuleNode(config: config, incarnation: name == "node1" ? 101 : 202, generationSeed: name == "node1" ? 1 : 2)
        }

        func receive(_ heartbeat: Heartbeat, _ module: String, _ path: Int) {
            guard module == "AM" else { return }
            lock.withLock { received.append(heartbeat) }
        }

        /// Feeds what arrived and one tick; sends what the machine announces.
        func step(extra events: [Event] = []) {
            let arrived = lock.withLock { () -> [Heartbeat] in
                defer { received = [] }
                return received
            }
            for event in events + arrived.map(Event.heartbeat) + [.tick] {
                for case .announce(let heartbeat) in machine.step(event) { channel.send(heartbeat, module: "AM") }
            }
        }
    }

    func testRolesAreFoundOverUDPAndAPrimWhosePeerVanishesGoesOnAlone() throws {
        var node1Paths: [HeartbeatPath] = [], node2Paths: [HeartbeatPath] = []
        for host in ["127.0.0.1", "127.0.0.2"] {
            let a = NetworkAddress(host: host, port: try freePort(on: host, type: SOCK_DGRAM)), b = NetworkAddress(host: host, port: try freePort(on: host, type: SOCK_DGRAM))
            node1Paths.append(HeartbeatPath(local: a, peer: b))
            node2Paths.append(HeartbeatPath(local: b, peer: a))
        }
        // The first path of node1 leads nowhere: everything goes by the second.
        node1Paths[0].peer.port = try freePort(on: "127.0.0.1", type: SOCK_DGRAM)
        let log = CapturedLog()
        let node1 = Driven(name: "node1", peer: "node2"), node2 = Driven(name: "node2", peer: "node1")
        for (node, peer, paths) in [(node1, "node2", node1Paths), (node2, "node1", node2Paths)] {
            let configuration = HeartbeatConfiguration(clusterName: "demo", nodeName: node.name, peerName: peer, paths: paths,
                                                       presharedKey: testKey, modules: ["AM"], timeout: .milliseconds(300))
            node.channel = try HeartbeatChannel(configuration: configuration, logger: log.logger(node.name), onHeartbeat: node.receive)
        }
        defer { node1.channel.close(); node2.channel.close() }

        let data = DataGenerations(current: GenerationID(9), history: [GenerationID(8)], upToDate: true)
        for node in [node1, node2] { node.step(extra: [.localDataLoaded(data), .command(.start)]) }
        var ticks = 0
        while ticks < 150 && !(node1.machine.state == .prim && node2.machine.state == .second) {
            node1.step()
            node2.step()
            usleep(20_000)
            ticks += 1
        }
        XCTAssertEqual(node1.machine.state, .prim, "after \(ticks) ticks")
        XCTAssertEqual(node2.machine.state, .second)
        XCTAssertEqual(Set(node2.channel.status().filter(\.alive).map(\.index)), [1], "node1's heartbeats come by path 1 only")

        // node2 vanishes (its channel closes): node1 stays PRIM until the timeout, then ALONE.
        node2.channel.close()
        let lostAt = node1.machine.now
        while node1.machine.now - lostAt < 40 && node1.machine.state == .prim {
            node1.step()
            usleep(20_000)
        }
        XCTAssertEqual(node1.machine.state, .alone)
        XCTAssertLessThanOrEqual(node1.machine.now - lostAt, 15 + 1, "lost within the timeout (15 ticks)")
    }
}
