import ControlChannel
import Logging
import ReplProtocol
import ReplTransport

/// Carries a control request to the peer's daemon (`clusterctl -H node2 ...`) on an
/// authenticated replication connection (the cluster key's handshake), and its answer back.
struct PeerControl {
    let plan: NodePlan
    let logger: Logger

    /// The peer's answer, or a refusal saying why it could not be reached.
    func send(_ request: ControlRequest) -> ControlResponse {
        var connector = ReplicationConnector(addresses: plan.peerAddresses, configuration: plan.handshake, logger: logger)
        connector.connectTimeout = .seconds(2)
        let body: [UInt8]
        do {
            body = Array(try ControlJSON.line(request).utf8)
        } catch {
            return .refused("cannot encode the request: \(error)")
        }
        let channel: ReplicationChannel
        do {
            channel = try connector.connect()
        } catch {
            return .refused("\(plan.peerName) is unreachable: \(error)")
        }
        // A command waits for the peer's scripts (up to 120 s each).
        let sender = ReplicationSender(channel: channel, settings: .init(acknowledgementTimeout: .seconds(300)), logger: logger)
        defer { sender.close() }
        guard let ticket = try? sender.send(.controlRequest(ControlEnvelope(requestSequence: 0, body: body))) else {
            return .refused("\(plan.peerName) is unreachable: \(sender.lossReason ?? "the request could not be sent")")
        }
        switch sender.reply(to: ticket) {
        case (.applied, .controlReply(let reply)?):
            do {
                return try ControlJSON.decode(ControlResponse.self, from: reply.body)
            } catch {
                return .refused("\(plan.peerName) answered something unreadable: \(error)")
            }
        case (.failed(let code), _):
            return .refused("\(plan.peerName) does not take control requests (errno \(code): is it running `mirror run` without --role?)")
        default:
            return .refused("\(plan.peerName) did not answer (\(sender.lossReason ?? "no reply"))")
        }
    }
}
