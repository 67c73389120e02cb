import ClusterConfig
import Glibc
import Logging
import MirrorCore
import ReplTransport

/// What `mirror witness` needs: the cluster's identity, where to listen, the lease and where to
/// keep what it must not forget.
public struct WitnessServiceConfiguration: Equatable, Sendable {
    /// The nodes' leases (`WitnessTiming.leaseTicks` × the daemon's tick) must not be longer.
    public static let defaultLease = Duration.seconds(10)
    public static let defaultStateDirectory = "/var/lib/mirror-witness"

    public var clusterName: String
    public var address: NetworkAddress
    public var nodes: [String]
    public var modules: [String]
    public var presharedKey: [UInt8]
    /// How long a grant holds on the witness, from the request's arrival. Also how long a
    /// (re)started witness refuses every `serve`: leases it granted before may still run.
    public var lease: Duration
    /// Where the last served generation of each module is kept; nil: in memory only (tests).
    public var stateDirectory: String?
    /// How long a challenge may be answered.
    public var challengeLifetime: Duration
    public var dropLogInterval: Duration

    public init(clusterName: String, address: NetworkAddress, nodes: [String], modules: [String], presharedKey: [UInt8],
                lease: Duration = defaultLease, stateDirectory: String? = defaultStateDirectory,
                challengeLifetime: Duration = .seconds(5), dropLogInterval: Duration = .seconds(10)) {
        self.clusterName = clusterName
        self.address = address
        self.nodes = nodes
        self.modules = modules
        self.presharedKey = presharedKey
        self.lease = lease
        self.stateDirectory = stateDirectory
        self.challengeLifetime = challengeLifetime
        self.dropLogInterval = dropLogInterval
    }

    /// From the cluster file: its `[witness] address`, nodes and modules.
    /// - Throws: ``HeartbeatConfigurationError`` when the file has no `[witness]`.
    public init(cluster: ClusterConfiguration, presharedKey: [UInt8], lease: Duration = defaultLease,
                stateDirectory: String? = defaultStateDirectory) throws {
        guard let witness = cluster.witness else {
            throw HeartbeatConfigurationError("\(cluster.file): no [witness] table: give [witness] address = \"host:port\"")
        }
        self.init(clusterName: cluster.name, address: NetworkAddress(host: witness.address.host, port: witness.address.port),
                  nodes: cluster.nodes.map(\.name), modules: cluster.modules.map(\.name), presharedKey: presharedKey,
                  lease: lease, stateDirectory: stateDirectory)
    }
}

/// The witness: answers the nodes' `serve` and `release` requests over UDP with one
/// ``WitnessArbiter`` per module, whose clock counts milliseconds since the service started.
///
/// It keeps the last served generation of each module on disk, written before the grant is
/// answered. During its first `lease` it refuses every `serve` (a restarted witness has forgotten
/// the leases it granted, which may still run on a node), except from the node recorded as served
/// last: every grant records its node, and a grant needs every other node's lease over, so that
/// node is the only one that can still hold a lease from before (it keeps serving through a
/// witness restart).
public final class WitnessService: @unchecked Sendable {
    public let configuration: WitnessServiceConfiguration
    private let logger: Logger
    private let codec: WitnessCodec
    private let socket: DatagramSocket
    private let wakeup: Wakeup
    private let drops: RateLimitedLog
    private let store: ServedGenerationFile?
    private let started = ContinuousClock.now
    private let leaseMilliseconds: Int
    private let lock = Lock()
    private var stopping = false
    private var jobs: [String: Job] = [:]
    private var random = SystemRandomNumberGenerator()

    /// One module's arbitration.
    fileprivate struct Job {
        var arbiter: WitnessArbiter
        /// The arbiter's record, mirrored for log lines and the state file.
        var lastServed: (node: String, generation: GenerationID)?
        var grantedAt: (node: String, at: Int)?
        /// The node served last before this start (from the state file): the only one that can
        /// hold a lease granted by an earlier run, so the only one let through during the first lease.
        var servedBeforeStart: String?
        /// Per node: the challenge to answer next, and when it was issued.
        var challenges: [String: (value: UInt64, issued: ContinuousClock.Instant)] = [:]
        /// Per node: the last decided request (challenge, nonce) and the answer sent, sent again to a repeat.
        var answered: [String: (challenge: UInt64, nonce: UInt64, answer: [UInt8])] = [:]
    }

    /// Binds the witness address and loads what earlier runs served.
    public init(configuration: WitnessServiceConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        codec = WitnessCodec(presharedKey: configuration.presharedKey)
        drops = RateLimitedLog(logger: logger, interval: configuration.dropLogInterval)
        leaseMilliseconds = Int(configuration.lease / .milliseconds(1))
        guard leaseMilliseconds > 0 else { throw HeartbeatConfigurationError("the witness lease must be longer than 0") }
        store = try configuration.stateDirectory.map { try ServedGenerationFile(directory: $0) }
        for module in configuration.modules {
            var job = Job(arbiter: WitnessArbiter(leaseTicks: leaseMilliseconds))
            if let served = try store?.load(module: module) {
                job.restore(served, leaseMilliseconds: leaseMilliseconds)
                logger.info("module \(module): \(served.node) served last under generation \(served.generation) (from \(store!.directory))")
            }
            jobs[module] = job
        }
        wakeup = try Wakeup()
        socket = try DatagramSocket.bound(to: configuration.address)
    }

    /// The address actually bound.
    public var boundAddress: String { socket.local.description }

    /// Serves requests until ``stop()``, then closes the socket and returns (call it once).
    public func run() {
        info("witness of cluster \"\(configuration.clusterName)\" listening on \(socket.local) (UDP) for nodes "
            + "\(configuration.nodes.joined(separator: ", ")), modules \(configuration.modules.joined(separator: ", ")); lease "
            + "\(configuration.lease), every serve refused for the first \(configuration.lease)")
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 8)
        defer { buffer.deallocate() }
        var descriptors = [pollfd(fd: socket.descriptor, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: wakeup.descriptor, events: Int16(POLLIN), revents: 0)]
        while !lock.locked({ stopping }) {
            let ready = poll(&descriptors, 2, -1)
            if ready < 0 && errno != EINTR { logger.error("witness: poll: \(String(cString: strerror(errno)))"); return }
            if descriptors[1].revents != 0 { break }
            guard descriptors[0].revents != 0 else { continue }
            while let (size, source) = socket.receive(into: buffer) {
                let bytes = size <= buffer.count ? Array(UnsafeRawBufferPointer(rebasing: buffer[0..<size])) : []
                handle(bytes[...], size: size, source: source)
            }
        }
        socket.close()
        logger.info("witness stopped")
    }

    /// Makes ``run()`` return. Safe from any thread (not from a signal handler).
    public func stop() {
        lock.locked { stopping = true }
        wakeup.signal()
    }

    // MARK: Requests

    private func handle(_ bytes: ArraySlice<UInt8>, size: Int, source: SocketAddress) {
        if size > bytes.count { return drop(.oversized(size), source: source) }
        let message: WitnessMessage
        switch codec.decode(bytes) {
        case .failure(let reason): return drop(reason, source: source)
        case .success(let decoded): message = decoded
        }
        guard message.cluster == configuration.clusterName else { return drop(.wrongCluster(message.cluster), source: source) }
        guard configuration.nodes.contains(message.node) else { return drop(.unknownNode(message.node), source: source) }
        guard jobs[message.module] != nil else { return drop(.unknownModule(message.module), source: source) }
        guard case .request(let request) = message.body else { return drop(.unexpected("answer sent to the witness"), source: source) }
        let now = ContinuousClock.now
        let answer = lock.locked { respond(to: message, request: request, now: now) }
        guard let answer else { return }
        do {
            try socket.send(answer, to: source)
        } catch {
            drops.warning(kind: "send", "witness: cannot answer \(source): \(error)")
        }
    }

    /// The answer's bytes: the cached one for a repeat, a challenge for a request that does not
    /// answer the current one, else the decision.
    private func respond(to message: WitnessMessage, request: WitnessRequest, now: ContinuousClock.Instant) -> [UInt8]? {
        let node = message.node, module = message.module
        var job = jobs[module]!
        defer { jobs[module] = job }
        if let last = job.answered[node], message.challenge != 0, last.challenge == message.challenge, last.nonce == message.nonce {
            logger.debug("module \(module): \(node) repeated a request; same answer")
            return last.answer
        }
        let outstanding = job.challenges[node].flatMap { now - $0.issued < configuration.challengeLifetime ? $0.value : nil }
        guard let current = outstanding, current == message.challenge else {
            // Not decided: the node sends the request again with the outstanding challenge. Replays
            // get the same one back, so they cannot keep the node's own requests from being decided.
            let challenge = outstanding ?? newChallenge()
            if outstanding == nil { job.challenges[node] = (challenge, now) }
            if message.challenge != 0 { logger.debug("module \(module): \(node) answered a stale challenge") }
            return reply(to: message, .challenge, next: challenge)
        }
        let next = newChallenge()
        job.challenges[node] = (next, now)
        func decided(_ body: WitnessMessage.Body) -> [UInt8]? { reply(to: message, body, next: next) }
        let answer: [UInt8]?
        switch request.kind {
        case .release:
            release(request, module: module, job: &job, now: now)
            answer = decided(.released(request.stamp))
        case .serve:
            answer = decided(.verdict(decide(request, module: module, job: &job, now: now)))
        }
        if let answer { job.answered[node] = (message.challenge, message.nonce, answer) }
        return answer
    }

    private func reply(to message: WitnessMessage, _ body: WitnessMessage.Body, next challenge: UInt64) -> [UInt8]? {
        try? codec.encode(WitnessMessage(nonce: message.nonce, challenge: challenge, cluster: configuration.clusterName,
                                         module: message.module, node: message.node, body: body))
    }

    private func decide(_ request: WitnessRequest, module: String, job: inout Job, now instant: ContinuousClock.Instant) -> WitnessVerdict {
        let refused = WitnessVerdict(mayServe: false, request: request.stamp, servingGeneration: request.servingGeneration)
        let now = milliseconds(instant)
        let asked = "module \(module): \(request.node) asks to serve under generation \(request.servingGeneration)"
            + " (copy \(request.data)\(request.forced ? ", forced prim" : ""))"
        if now < leaseMilliseconds && request.node != job.servedBeforeStart {
            let holder = job.servedBeforeStart.map { "\($0)'s lease" } ?? "leases"
            info("\(asked): refused, the witness started \(seconds(now)) s ago and refuses every serve during its first "
                + "\(seconds(leaseMilliseconds)) s (\(holder) granted before a restart may still run)")
            return refused
        }
        let holder = job.arbiter.holder(at: now)
        guard let verdict = job.arbiter.decide(request, now: now) else { return refused }
        guard verdict.mayServe else {
            if let holder, holder != request.node, let granted = job.grantedAt {
                logger.info("\(asked): refused, \(holder) holds the lease for \(seconds(granted.at + leaseMilliseconds - now)) s more")
            } else if let served = job.lastServed {
                logger.info("\(asked): refused, its copy lacks generation \(served.generation), which \(served.node) served last")
            } else {
                logger.info("\(asked): refused")
            }
            return refused
        }
        job.grantedAt = (request.node, now)
        if job.lastServed?.node != request.node || job.lastServed?.generation != request.servingGeneration {
            do {
                try store?.save(module: module, node: request.node, generation: request.servingGeneration)
            } catch {
                // Safe: the arbiter holds the lease for the node, which is told no and asks again.
                logger.error("\(asked): refused, cannot record the served generation: \(error)")
                job.lastServed = (request.node, request.servingGeneration)
                return refused
            }
            job.lastServed = (request.node, request.servingGeneration)
        }
        logger.info("\(asked): granted, lease \(seconds(leaseMilliseconds)) s")
        return verdict
    }

    private func release(_ request: WitnessRequest, module: String, job: inout Job, now instant: ContinuousClock.Instant) {
        let now = milliseconds(instant)
        let held = job.arbiter.holder(at: now) == request.node
        _ = job.arbiter.decide(request, now: now)
        if held && job.arbiter.holder(at: now) == nil {
            job.grantedAt = nil
            logger.info("module \(module): \(request.node) released its lease")
        } else {
            logger.info("module \(module): \(request.node) released a lease it no longer holds (nothing to do)")
        }
    }

    private func info(_ text: String) { logger.info("\(text)") }

    private func newChallenge() -> UInt64 {
        while true {
            let value = random.next()
            if value != 0 { return value }
        }
    }

    private func milliseconds(_ instant: ContinuousClock.Instant) -> Int { Int((instant - started) / .milliseconds(1)) }

    private func seconds(_ milliseconds: Int) -> String {
        let tenths = (milliseconds + 50) / 100
        return "\(tenths / 10).\(tenths % 10)"
    }

    private func drop(_ reason: WitnessDropReason, source: SocketAddress) {
        drops.warning(kind: reason.category, "witness: dropped a datagram from \(source): \(reason)")
    }
}

extension WitnessService.Job {
    /// Gives the arbiter back the last served generation recorded on disk: a forced request from
    /// that node, decided so long ago that its lease is over (forced skips the data check and
    /// records exactly node and generation, as the arbiter documents).
    fileprivate mutating func restore(_ served: (node: String, generation: GenerationID), leaseMilliseconds: Int) {
        let past = WitnessRequest(kind: .serve, node: served.node, stamp: TickStamp(incarnation: 0, tick: 0),
                                  servingGeneration: served.generation, data: .justCreated, forced: true)
        _ = arbiter.decide(past, now: -leaseMilliseconds - 1)
        lastServed = served
        servedBeforeStart = served.node
    }
}
