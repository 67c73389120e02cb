import Logging
import ReplProtocol
@testable import ReplTransport

let clusterKey: [UInt8] = Array(0..<32)

func configuration(cluster: String = "prod", node: String, peers: Set<String>, modules: [String] = ["pg", "files"],
                   key: [UInt8] = clusterKey) -> HandshakeConfiguration {
    try! HandshakeConfiguration(clusterName: cluster, nodeName: node, knownPeers: peers, modules: modules,
                                preSharedKey: key)
}

let node1 = configuration(node: "node1", peers: ["node2"])
let node2 = configuration(node: "node2", peers: ["node1"])

/// A listener for node2 on 127.0.0.1 (port chosen by the kernel) that queues the channels it accepts.
final class TestListener {
    let log = CapturedLog()
    private(set) var listener: ReplicationListener!
    private let monitor = Monitor()
    private var channels: [ReplicationChannel] = []

    init(configuration: HandshakeConfiguration = node2, handshakeTimeout: Duration = .seconds(5)) throws {
        listener = try ReplicationListener(address: NetworkAddress(host: "127.0.0.1", port: 0),
                                           configuration: configuration, handshakeTimeout: handshakeTimeout,
                                           logger: log.logger) { [monitor] channel in
            monitor.locked {
                self.channels.append(channel)
                monitor.broadcast()
            }
        }
    }

    var address: NetworkAddress { NetworkAddress(host: "127.0.0.1", port: listener.port) }

    /// The next authenticated channel, waiting up to 5 s.
    func nextChannel() -> ReplicationChannel? {
        monitor.locked {
            let deadline = ContinuousClock.now + .seconds(5)
            while channels.isEmpty, monitor.wait(until: deadline) {}
            return channels.isEmpty ? nil : channels.removeFirst()
        }
    }

    func connector(_ configuration: HandshakeConfiguration = node1, log: CapturedLog) -> ReplicationConnector {
        ReplicationConnector(addresses: [address], configuration: configuration, logger: log.logger)
    }

    deinit { listener.close() }
}

/// A connected pair of channels: node1 (connector, primary) and node2 (listener, secondary).
func connectedPair(log: CapturedLog = CapturedLog()) throws -> (primary: ReplicationChannel, secondary: ReplicationChannel) {
    let listener = try TestListener()
    let primary = try listener.connector(log: log).connect()
    guard let secondary = listener.nextChannel() else { throw TransportError.timedOut("no channel accepted") }
    return (primary, secondary)
}
