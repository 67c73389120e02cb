import ClusterConfig
import Glibc
import Logging
import MirrorCore
import ReplTransport

/// A node's side of the witness protocol: sends a ``WitnessRequest`` and waits for the verdict.
///
/// ``ask(_:module:)`` blocks for at most about `attempts × timeout` (plus one round trip for a
/// challenge), so call it off the state machine's thread and feed the verdict back as
/// `Event.witnessVerdict`; nil means no answer (the state machine then acts as refused and asks
/// again later). Safe to call from several threads, e.g. one per module.
public final class WitnessClient: @unchecked Sendable {
    public let clusterName: String
    public let nodeName: String
    public let witness: NetworkAddress
    public let timeout: Duration
    public let attempts: Int
    private let codec: WitnessCodec
    private let logger: Logger
    private let drops: RateLimitedLog
    private let lock = Lock()
    /// Per module: the challenge the witness gave last.
    private var challenges: [String: UInt64] = [:]
    private var resolved: SocketAddress?
    private var random = SystemRandomNumberGenerator()

    /// - Parameters:
    ///   - timeout: how long to wait for an answer before sending again.
    ///   - attempts: how many times a request is sent before giving up.
    public init(clusterName: String, nodeName: String, witness: NetworkAddress, presharedKey: [UInt8],
                timeout: Duration = .milliseconds(300), attempts: Int = 4, logger: Logger) {
        self.clusterName = clusterName
        self.nodeName = nodeName
        self.witness = witness
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.logger = logger
        codec = WitnessCodec(presharedKey: presharedKey)
        drops = RateLimitedLog(logger: logger, interval: .seconds(10))
    }

    /// The client of node `node` for the cluster file's `[witness]`.
    /// - Throws: ``HeartbeatConfigurationError`` without `[witness]` or when the node is unknown.
    public convenience init(cluster: ClusterConfiguration, node: String, presharedKey: [UInt8], logger: Logger) throws {
        guard let witness = cluster.witness else {
            throw HeartbeatConfigurationError("\(cluster.file): no [witness] table")
        }
        guard cluster.node(named: node) != nil else {
            throw HeartbeatConfigurationError("\(cluster.file): \"\(node)\" is not a node of cluster \"\(cluster.name)\"")
        }
        self.init(clusterName: cluster.name, nodeName: node, witness: NetworkAddress(host: witness.address.host, port: witness.address.port),
                  presharedKey: presharedKey, logger: logger)
    }

    /// Sends `request` (this node's, for `module`) and returns the verdict; nil without an
    /// answer in time. A `release` is sent until acknowledged and always returns nil.
    public func ask(_ request: WitnessRequest, module: String) -> WitnessVerdict? {
        guard request.node == nodeName else {
            logger.error("witness request for module \(module) not sent: it is from \"\(request.node)\", this node is \"\(nodeName)\"")
            return nil
        }
        switch exchange(request, module: module) {
        case .verdict(let verdict)?: return verdict
        default: return nil
        }
    }

    /// Sends a `release` until the witness acknowledges it; false without an answer.
    @discardableResult
    public func release(_ request: WitnessRequest, module: String) -> Bool {
        guard request.kind == .release, request.node == nodeName else { return false }
        if case .released? = exchange(request, module: module) { return true }
        return false
    }

    private func exchange(_ request: WitnessRequest, module: String) -> WitnessMessage.Body? {
        let socket: DatagramSocket
        do {
            socket = try DatagramSocket.connected(to: try destination())
        } catch {
            drops.warning(kind: "connect", "witness \(witness): \(error)")
            return nil
        }
        let nonce = lock.locked { random.next() }
        var message = WitnessMessage(nonce: nonce, challenge: lock.locked { challenges[module] ?? 0 }, cluster: clusterName,
                                     module: module, node: nodeName, body: .request(request))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 8)
        defer { buffer.deallocate() }
        var sends = 0, challengeRounds = 0
        while sends < attempts {
            guard let bytes = try? codec.encode(message) else {
                logger.error("witness request for module \(module) cannot be encoded (names longer than 255 bytes?)")
                return nil
            }
            do { try socket.send(bytes, to: nil) } catch { drops.warning(kind: "send", "witness \(witness): \(error)") }
            sends += 1
            let deadline = ContinuousClock.now + timeout
            waiting: while let answer = receive(on: socket, buffer: buffer, until: deadline) {
                guard answer.nonce == nonce, answer.module == module, answer.node == nodeName else { continue }
                lock.locked { challenges[module] = answer.challenge }
                switch answer.body {
                case .challenge:
                    // A fresh challenge: send the same request again with it, without counting an attempt
                    // (a few times at most: someone may be replaying our old requests meanwhile).
                    challengeRounds += 1
                    if challengeRounds <= 3 { sends -= 1 }
                    message.challenge = answer.challenge
                    break waiting
                case .verdict(let verdict):
                    guard request.kind == .serve, verdict.request == request.stamp,
                          verdict.servingGeneration == request.servingGeneration else { continue }
                    return answer.body
                case .released(let stamp):
                    guard request.kind == .release, stamp == request.stamp else { continue }
                    return answer.body
                case .request:
                    continue
                }
            }
        }
        let what = request.kind == .serve ? "serve under generation \(request.servingGeneration)" : "release"
        logger.warning("witness \(witness) did not answer module \(module)'s request to \(what) (\(attempts) attempts, \(timeout) each)")
        return nil
    }

    /// The next authentic answer from the witness before `deadline`; nil once it passed.
    private func receive(on socket: DatagramSocket, buffer: UnsafeMutableRawBufferPointer, until deadline: ContinuousClock.Instant) -> WitnessMessage? {
        while true {
            var entry = pollfd(fd: socket.descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, PollTimeout.until(deadline))
            if ready == 0 { return nil }
            if ready < 0 { if errno == EINTR { continue } else { return nil } }
            while let (size, source) = socket.receive(into: buffer) {
                guard size <= buffer.count else {
                    drops.warning(kind: "oversized", "witness answer from \(source) dropped: \(WitnessDropReason.oversized(size))")
                    continue
                }
                switch codec.decode(UnsafeRawBufferPointer(rebasing: buffer[0..<size]).map { $0 }[...]) {
                case .failure(let reason):
                    drops.warning(kind: reason.category, "witness answer from \(source) dropped: \(reason)")
                case .success(let message):
                    guard message.cluster == clusterName else {
                        drops.warning(kind: "wrong-cluster", "witness answer from \(source) dropped: \(WitnessDropReason.wrongCluster(message.cluster))")
                        continue
                    }
                    return message
                }
            }
            if ContinuousClock.now >= deadline { return nil }
        }
    }

    private func destination() throws -> SocketAddress {
        if let known = lock.locked({ resolved }) { return known }
        guard let address = try SocketAddress.resolve(witness, passive: false).first else {
            throw DatagramSocketError.unresolvable(host: witness.host, reason: "no address")
        }
        lock.locked { resolved = address }
        return address
    }
}
