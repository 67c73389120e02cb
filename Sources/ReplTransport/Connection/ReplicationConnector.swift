import Logging
import ReplProtocol

/// The primary's side of the connection: connects to the peer's replication address(es) and
/// runs the handshake, giving an authenticated ``ReplicationChannel``.
///
/// Addresses are tried in order; the first that answers is used. A refusal (by either side) is
/// logged as one warning line and thrown at once, without retrying: a wrong key or cluster name
/// does not fix itself. Failures to reach the peer are retried with exponential backoff by
/// ``connect(retryingFor:)``.
public struct ReplicationConnector {
    /// The peer's replication addresses, in the order they are tried.
    public let addresses: [NetworkAddress]
    /// This node's identity, modules and key, as the handshake presents them.
    public let configuration: HandshakeConfiguration
    /// How long one TCP connect may take.
    public var connectTimeout: Duration = .seconds(2)
    /// How long the handshake may take once connected.
    public var handshakeTimeout: Duration = .seconds(5)
    /// The first pause between rounds of attempts; it doubles up to ``maximumBackoff``.
    public var initialBackoff: Duration = .milliseconds(100)
    /// The longest pause between rounds of attempts.
    public var maximumBackoff: Duration = .seconds(2)
    private let logger: Logger

    /// A connector with the default timeouts and backoff; change the properties to tune them.
    public init(addresses: [NetworkAddress], configuration: HandshakeConfiguration, logger: Logger) {
        self.addresses = addresses
        self.configuration = configuration
        self.logger = logger
    }

    /// One attempt at each address in turn.
    /// - Throws: ``TransportError``: the refusal, or the last address's failure.
    public func connect() throws -> ReplicationChannel {
        var lastError = TransportError.unresolvable(host: "", reason: "no replication address configured")
        for address in addresses {
            let socket: Socket
            do {
                socket = try Socket.connected(to: address, timeout: connectTimeout)
            } catch let error as TransportError {
                logger.debug("cannot reach the replication peer at \(address): \(error)")
                lastError = error
                continue
            }
            do {
                let channel = try HandshakeExchange.run(.initiator, configuration: configuration, on: socket,
                                                        deadline: .now + handshakeTimeout)
                logger.info("replication connection to \(channel.peerDescription) established")
                return channel
            } catch let error as TransportError {
                logger.warning("replication connection to \(socket.remoteAddress) failed: \(error)")
                socket.shutdown()
                if case .refused = error { throw error }
                lastError = error
            }
        }
        throw lastError
    }

    /// Attempts ``connect()`` until it succeeds, the peer refuses, or `duration` has passed.
    /// - Throws: ``TransportError``: the refusal, or the last failure once time is up.
    public func connect(retryingFor duration: Duration) throws -> ReplicationChannel {
        let deadline = ContinuousClock.now + duration
        var backoff = initialBackoff
        while true {
            do {
                return try connect()
            } catch TransportError.refused(let refusal) {
                throw TransportError.refused(refusal)
            } catch {
                let pause = min(backoff, deadline - .now)
                guard pause > .zero else { throw error }
                Pause.sleep(for: pause)
                backoff = min(backoff * 2, maximumBackoff)
            }
        }
    }
}
